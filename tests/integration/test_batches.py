"""Batches from HTTP through Redis, the fan-out on the batch lane and a real worker, to aiosmtpd."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


def rows(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` recipients of the welcome template, each with a name of their own."""
    run = uuid.uuid4().hex[:6]
    return [
        {
            "to": f"{tag}-{run}-{i}@example.com",
            "data": {"name": f"N{i}", "product": "Acme", "login_url": f"https://a.example/{i}"},
            "reference": f"row-{i}",
        }
        for i in range(n)
    ]


def post_batch(stack: Stack, recipients: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    response = stack.post(
        "/v1/mail/batch", {"template": "welcome", "recipients": recipients, **extra}
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def batch(stack: Stack, batch_id: str) -> dict[str, Any]:
    response = stack.get_as(f"/v1/batches/{batch_id}")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def test_a_2000_row_batch_is_delivered_each_with_its_own_data(stack: Stack) -> None:
    recipients = rows(2000, "b2k")
    accepted = post_batch(stack, recipients, reference="newsletter-1")
    assert (accepted["status"], accepted["total"]) == ("queued", 2000)
    done = wait_for(
        lambda: (b := batch(stack, accepted["id"]))["status"] == "done" and b,
        timeout=120,
        what="the batch to be done",
    )
    assert done["counts"] == {"sent": 2000}
    assert done["reference"] == "newsletter-1"
    by_rcpt = stack.smtp.by_recipient()
    for i, row in enumerate(recipients):
        (message,) = by_rcpt[row["to"]]
        assert message["Subject"] == f"Welcome to Acme, N{i}"

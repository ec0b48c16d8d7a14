"""Batches as the tests post and follow them."""

from __future__ import annotations

import uuid
from typing import Any

import requests

from tests.support.harness.clients import auth
from tests.support.harness.wait import wait_for

# What the counts of a batch call rows that are not final yet.
OPEN = ("scheduled", "queued", "sending", "retrying")


def rows(n: int, tag: str) -> list[dict[str, Any]]:
    """``n`` recipients of the welcome template, each with a name of their own (``N<i>``)."""
    run = uuid.uuid4().hex[:6]
    return [
        {
            "to": f"{tag}-{run}-{i}@example.com",
            "data": {"name": f"N{i}", "product": "Acme", "login_url": f"https://a.example/{i}"},
            "reference": f"row-{i}",
        }
        for i in range(n)
    ]


def post_batch(
    base: str,
    recipients: list[dict[str, Any]],
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """POST a batch of the welcome template (with the tester's key unless ``headers`` give
    another); its 202 answer."""
    body = {"template": "welcome", "recipients": recipients, **extra}
    response = requests.post(
        f"{base}/v1/mail/batch", json=body, headers=headers or auth(), timeout=30
    )
    assert response.status_code == 202, response.text
    answer: dict[str, Any] = response.json()
    return answer


def batch(base: str, batch_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """``GET /v1/batches/<id>``, checking on the way that the counts add up to the total."""
    response = requests.get(f"{base}/v1/batches/{batch_id}", headers=headers or auth(), timeout=10)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    assert sum(found["counts"].values()) == found["total"], found
    return found


def wait_batch(
    base: str,
    batch_id: str,
    *statuses: str,
    timeout: float = 120,
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Poll the batch until its status is one of ``statuses`` and no row is still open."""
    return wait_for(
        lambda: (
            (b := batch(base, batch_id, headers))["status"] in statuses
            and not any(b["counts"].get(s) for s in OPEN)
            and b
        ),
        timeout=timeout,
        what=f"batch {batch_id} to be {' or '.join(statuses)}",
    )

"""Batches from HTTP through Redis, the fan-out on the batch lane and a real worker, to aiosmtpd."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from tests.support.harness.batches import OPEN, batch, post_batch, rows, wait_batch
from tests.support.harness.stack import Stack, address, new_phone, send
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


def delivered(stack: Stack, recipients: list[dict[str, Any]]) -> list[int]:
    """How many messages each recipient got."""
    by_rcpt = stack.smtp.by_recipient()
    return [len(by_rcpt.get(row["to"], [])) for row in recipients]


def state(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["NOTIFIER_REDIS_URL"], decode_responses=True)


@pytest.mark.soak
def test_a_2000_row_batch_is_delivered_each_with_its_own_data(stack: Stack) -> None:
    recipients = rows(2000, "b2k")
    accepted = post_batch(stack.base, recipients, reference="newsletter-1")
    assert (accepted["status"], accepted["total"]) == ("queued", 2000)
    assert accepted["links"]["self"] == f"/v1/batches/{accepted['id']}"
    seen: set[str] = set()

    def progress() -> dict[str, Any] | None:
        found = batch(stack.base, accepted["id"])  # the counts add up at every poll
        seen.add(found["status"])
        return found if found["status"] == "done" else None

    done = wait_for(progress, timeout=120, what="the batch to be done")
    assert done["counts"] == {"sent": 2000}
    assert (done["reference"], done["total"]) == ("newsletter-1", 2000)
    assert "sending" in seen
    assert delivered(stack, recipients) == [1] * 2000
    by_rcpt = stack.smtp.by_recipient()
    for i in (0, 1, 999, 1999):
        (message,) = by_rcpt[recipients[i]["to"]]
        assert message["Subject"] == f"Welcome to Acme, N{i}"
        text = message.get_body(("plain",))
        assert text is not None and f"https://a.example/{i}" in text.get_content()
    # Each row is a notification of its own, with its reference.
    page = stack.get_as(f"/v1/batches/{accepted['id']}/notifications").json()
    assert len(page["items"]) == 100 and page["next"] == "100"
    first = page["items"][0]
    assert (first["status"], first["reference"], first["error"]) == ("sent", "row-0", None)
    assert "to" not in first
    record = stack.status(first["id"])
    assert (record["status"], record["reference"], record["kind"]) == ("sent", "row-0", "mail")


@pytest.mark.parametrize(
    ("bad", "loc"),
    [
        ({"to": "not an address"}, "to"),
        ({"data": {"product": "Acme", "login_url": "https://a.example"}}, "data"),
    ],
    ids=["address", "data"],
)
def test_one_bad_row_among_500_is_named_and_nothing_is_stored(
    stack: Stack, bad: dict[str, Any], loc: str
) -> None:
    recipients = rows(500, "bad")
    recipients[317] = {**recipients[317], **bad}
    before = set(state(stack).scan_iter("notifier:{*}:b:*"))
    pending = state(stack).hgetall("notifier:batch_pending:tester")
    response = stack.post("/v1/mail/batch", {"template": "welcome", "recipients": recipients})
    assert response.status_code == 422, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    errors = response.json()["errors"]
    assert [e["loc"][:4] for e in errors] == [["body", "recipients", 317, loc]]
    assert set(state(stack).scan_iter("notifier:{*}:b:*")) == before
    assert state(stack).hgetall("notifier:batch_pending:tester") == pending


def test_a_batch_without_a_template_sends_the_same_mail_to_each(stack: Stack) -> None:
    recipients = [{"to": address("plainb")} for _ in range(3)]
    response = stack.post(
        "/v1/mail/batch", {"subject": "Notice", "text": "Same for all", "recipients": recipients}
    )
    assert response.status_code == 202, response.text
    wait_batch(stack.base, response.json()["id"], "done")
    by_rcpt = stack.smtp.by_recipient()
    assert [by_rcpt[r["to"]][0]["Subject"] for r in recipients] == ["Notice"] * 3


def test_cancel_half_way_stops_what_has_not_gone_out(stack: Stack) -> None:
    stack.smtp.handler.rcpt_delay = 0.05  # slow enough to cancel a drain half-way
    try:
        recipients = rows(400, "cancel")
        accepted = post_batch(stack.base, recipients)
        wait_for(
            lambda: batch(stack.base, accepted["id"])["counts"].get("sent", 0) >= 40,
            what="the first rows to be sent",
        )
        response = stack.delete(f"/v1/batches/{accepted['id']}")
        assert response.status_code == 200, response.text
        at_cancel = response.json()
        arrived_at_cancel = sum(delivered(stack, recipients))
        assert at_cancel["status"] == "cancelled"
        assert not any(at_cancel["counts"].get(s) for s in ("queued", "scheduled", "retrying"))
        in_flight = at_cancel["counts"].get("sending", 0)
        done = wait_batch(stack.base, accepted["id"], "cancelled")
    finally:
        stack.smtp.handler.rcpt_delay = 0.0
    counts = done["counts"]
    assert counts["sent"] + counts["cancelled"] == 400
    assert 40 <= counts["sent"] < 400
    # Nothing went out after the cancel was answered but what was being sent at that moment.
    got = delivered(stack, recipients)
    assert sum(got) == counts["sent"] and max(got) == 1
    assert sum(got) - arrived_at_cancel <= in_flight
    # The cancelled rows page by status, and a second cancel changes nothing.
    page = stack.get_as(f"/v1/batches/{accepted['id']}/notifications?status=cancelled").json()
    assert page["items"] and all(i["status"] == "cancelled" for i in page["items"])
    again = stack.delete(f"/v1/batches/{accepted['id']}")
    assert again.status_code == 200 and again.json()["counts"] == counts


def test_a_done_batch_cannot_be_cancelled_and_others_do_not_see_it(stack: Stack) -> None:
    accepted = post_batch(stack.base, rows(2, "done"))
    wait_batch(stack.base, accepted["id"], "done")
    response = stack.delete(f"/v1/batches/{accepted['id']}")
    assert response.status_code == 409
    assert response.headers["Content-Type"] == "application/problem+json"
    assert stack.get_as(f"/v1/batches/{accepted['id']}", who="mailer").status_code == 404
    assert stack.delete(f"/v1/batches/{accepted['id']}", who="mailer").status_code == 404


def test_a_scheduled_batch_waits_for_send_at_and_can_be_cancelled(stack: Stack) -> None:
    soon = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    waiting, cancelled = rows(20, "sched"), rows(20, "schedx")
    first = post_batch(stack.base, waiting, send_at=soon)
    second = post_batch(stack.base, cancelled, send_at=later)
    assert first["status"] == second["status"] == "scheduled"
    shown = batch(stack.base, first["id"])
    assert (shown["status"], shown["counts"]) == ("scheduled", {"scheduled": 20})
    response = stack.delete(f"/v1/batches/{second['id']}")
    assert response.status_code == 200
    assert response.json()["counts"] == {"cancelled": 20}
    done = wait_batch(stack.base, first["id"], "done", timeout=60)
    assert done["counts"] == {"sent": 20}
    arrivals = [stack.smtp.by_recipient()[r["to"]][0] for r in waiting]
    assert len(arrivals) == 20
    assert delivered(stack, cancelled) == [0] * 20
    page = stack.get_as(f"/v1/batches/{second['id']}/notifications").json()
    assert [i["status"] for i in page["items"]] == ["cancelled"] * 20


def test_failed_rows_page_by_status_with_their_errors(stack: Stack) -> None:
    recipients = rows(1200, "pages")
    failing = {5, 640, 1199}
    for i in failing:
        stack.smtp.plan(recipients[i]["to"], "550 5.1.1 No such user")
    accepted = post_batch(stack.base, recipients)
    done = wait_batch(stack.base, accepted["id"], "done")
    assert done["counts"] == {"sent": 1197, "failed": 3}
    found, cursor = [], "0"
    while cursor is not None:
        page = stack.get_as(
            f"/v1/batches/{accepted['id']}/notifications?status=failed&cursor={cursor}"
        ).json()
        found += page["items"]
        cursor = page["next"]
    assert sorted(int(i["reference"].removeprefix("row-")) for i in found) == sorted(failing)
    assert all("550" in i["error"] for i in found)
    bad = stack.get_as(f"/v1/batches/{accepted['id']}/notifications?status=lost")
    assert bad.status_code == 422 and bad.json()["errors"][0]["loc"] == ["query", "status"]


@pytest.mark.soak
def test_a_captcha_and_a_single_mail_overtake_a_batch_drain(stack: Stack) -> None:
    recipients = rows(2000, "drain")
    accepted = post_batch(stack.base, recipients)
    wait_for(
        lambda: batch(stack.base, accepted["id"])["counts"].get("sent", 0) >= 100,
        what="the batch to be draining",
    )
    phone = new_phone()
    captcha = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
    assert captcha.status_code == 202, captcha.text
    mail = send(stack, to=[address("single")])
    stack.wait_status(captcha.json()["id"], "sent")
    stack.wait_status(mail, "sent")
    during = batch(stack.base, accepted["id"])
    assert during["status"] == "sending", during
    assert any(during["counts"].get(s) for s in OPEN)
    wait_batch(stack.base, accepted["id"], "done")

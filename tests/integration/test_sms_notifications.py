"""SMS notifications (``POST /v1/sms``, ``POST /v1/sms/batch``) through HTTP, Redis, a real worker
and the providers' peers, which check each vendor's signature.

The stack (``texting``, the session's, which test_cn_sms.py shares) routes +86 to Aliyun, then
Tencent (template-only: they send the templates their console approved) and every other country
to Twilio (text). Its operator's folder of named SMS gives ``shipped`` a text and both vendors'
approved templates, and ``aliyun_only`` Aliyun's alone. Beside the tests' clients it has a shop
with its own senders and status callbacks, and a test key.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
import requests
from standardwebhooks.webhooks import Webhook

from tests.support.harness.batches import OPEN, batch
from tests.support.harness.sms import (
    DATA,
    PUBLIC_URL,
    SECRET,
    TENCENT_TOKEN,
    Texting,
    american,
    americans,
)
from tests.support.harness.wait import wait_for
from tests.support.peers import aliyun, tencent
from tests.support.peers.twilio import FROM

pytestmark = pytest.mark.integration
SHIPPED_TEXT = "Acme: your parcel 1234 ships today."


def mainland() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def aliyun_got(texting: Texting, phone: str) -> list[aliyun.Sent]:
    return [s for s in texting.ali.sent if aliyun.e164(s.phone) == phone]


def tencent_got(texting: Texting, phone: str) -> list[tencent.Sent]:
    return [s for s in texting.ten.sent if s.phone == phone]


def twilio_got(texting: Texting, phone: str) -> list[dict[str, str]]:
    with texting.twilio.lock:
        return [m for m in texting.twilio.received if m["To"] == phone]


def test_a_text_and_a_named_sms_reach_twilio_rendered(texting: Texting) -> None:
    stack = texting.stack
    phone = american()
    text = texting.send(to=phone, text="a" * 161, reference="order-1")
    named = texting.send(to=phone, template="shipped", data=DATA)
    first, second = stack.wait_status(text, "sent"), stack.wait_status(named, "sent")
    assert (first["kind"], first["provider"], first["segments"], first["reference"]) == (
        "sms", "twilio", 2, "order-1",
    )  # fmt: skip
    assert (second["provider"], second["segments"]) == ("twilio", 1)
    assert first["provider_ref"].startswith("SM")
    got = twilio_got(texting, phone)
    assert sorted(m["Body"] for m in got) == sorted(["a" * 161, SHIPPED_TEXT])
    assert {m["From"] for m in got} == {FROM}
    assert phone not in json.dumps([first, second])
    metrics = stack.get("/metrics").text
    assert 'notifier_notifications_total{kind="sms",mode="live",status="sent"} ' in metrics
    assert 'notifier_delivery_seconds_count{kind="sms",lane="sms"} ' in metrics


def test_the_same_template_reaches_aliyun_and_tencent_as_their_approved_templates(
    texting: Texting,
) -> None:
    """+86 goes to Aliyun first (its country's order) as TemplateCode and named TemplateParam;
    when Aliyun is down, to Tencent as TemplateId and the parameters in order."""
    stack = texting.stack
    phone, other = mainland(), mainland()
    through_aliyun = stack.wait_status(
        texting.send(to=phone, template="shipped", data=DATA), "sent"
    )
    (sent,) = aliyun_got(texting, phone)
    assert (sent.template, sent.params, sent.sign_name) == (
        aliyun.SHIPPED, {"shop": "Acme", "order": "1234"}, aliyun.SIGN_NAME,
    )  # fmt: skip
    assert (through_aliyun["provider"], through_aliyun["provider_ref"]) == ("aliyun", sent.biz_id)
    assert through_aliyun["segments"] == 1  # the text a provider that takes text would send
    texting.ali.plan(other, aliyun.SERVER_ERROR)
    through_tencent = texting.send(to=other, template="shipped", data=DATA)
    record = stack.wait_status(through_tencent, "sent", "failed")
    assert (record["status"], record["provider"], record["attempts"]) == ("sent", "tencent", 1)
    (by_tencent,) = tencent_got(texting, other)
    assert (by_tencent.template, by_tencent.params, by_tencent.sign_name) == (
        tencent.SHIPPED, ["Acme", "1234"], tencent.SIGN_NAME,
    )  # fmt: skip
    assert aliyun_got(texting, other) == [] and twilio_got(texting, other) == []


def test_per_country_order_and_the_clients_own_senders(texting: Texting) -> None:
    cn, us = mainland(), american()
    body = {"template": "shipped", "data": DATA}
    to_cn = texting.shop.post("/v1/sms", {"to": cn, **body})
    to_us = texting.shop.post("/v1/sms", {"to": us, **body})
    assert texting.shop.wait_status(to_cn, "sent")["provider"] == "aliyun"
    assert texting.shop.wait_status(to_us, "sent")["provider"] == "twilio"
    (sent,) = aliyun_got(texting, cn)
    assert sent.sign_name == aliyun.CLIENT_SIGN_NAME
    (message,) = twilio_got(texting, us)
    assert (message["From"], message["Body"]) == ("Acme", SHIPPED_TEXT)
    assert twilio_got(texting, cn) == [] and aliyun_got(texting, us) == []


def test_free_text_to_a_number_only_template_providers_serve_is_422_and_nothing_is_queued(
    texting: Texting,
) -> None:
    before, peers = texting.records(), texting.peer_requests()
    phone = mainland()
    refused = texting.sms({"to": phone, "text": "Your parcel ships today."})
    assert refused.status_code == 422, refused.text
    assert refused.headers["Content-Type"] == "application/problem+json"
    (error,) = refused.json()["errors"]
    assert error["loc"] == ["body", "text"] and "aliyun, tencent" in error["msg"]
    # Nor a named SMS without a template either of them approved.
    aliyun_down = texting.sms({"to": american(), "template": "aliyun_only", "data": DATA})
    assert [e["loc"] for e in aliyun_down.json()["errors"]] == [["body", "template"]]
    assert texting.records() == before
    assert texting.peer_requests() == peers


def test_aliyun_only_goes_nowhere_else_and_a_bad_number_does_not_fail_over(
    texting: Texting,
) -> None:
    stack = texting.stack
    bad = mainland()
    texting.ali.plan(bad, aliyun.INVALID_NUMBER)
    record = stack.wait_status(texting.send(to=bad, template="shipped", data=DATA), "failed")
    assert (record["provider"], record["attempts"]) == ("aliyun", 1)
    assert "isv.MOBILE_NUMBER_ILLEGAL" in record["error"]
    assert tencent_got(texting, bad) == []
    # Throttled, a named SMS only Aliyun has a template of waits for Aliyun, never Tencent.
    phone = mainland()
    texting.ali.plan(phone, aliyun.THROTTLED)
    notification_id = texting.send(to=phone, template="aliyun_only", data=DATA)
    record = stack.wait_status(notification_id, "sent")
    assert (record["provider"], record["attempts"]) == ("aliyun", 2)
    assert tencent_got(texting, phone) == []
    assert len(aliyun_got(texting, phone)) == 1


def verified(received: Any) -> dict[str, Any]:
    """The callback's JSON, after the standardwebhooks package verified its signature."""
    headers = {k.lower(): v for k, v in received.headers.items()}
    body: dict[str, Any] = Webhook(SECRET).verify(received.body, headers)
    return body


STATUS_ORDER = ["sent", "delivered", "undelivered", "failed"]


def callbacks(texting: Texting, notification_id: str, count: int) -> list[dict[str, Any]]:
    """The first ``count`` status callbacks of a notification, verified, in the order of their
    statuses: they run concurrently, so a receipt that comes at once may have its callback
    arrive before the send's (docs/receipts-and-callbacks.md)."""
    got = wait_for(
        lambda: len(r := texting.receiver.for_notification(notification_id)) >= count and r,
        what=f"{count} callbacks of {notification_id}",
    )
    return sorted((verified(r) for r in got), key=lambda c: STATUS_ORDER.index(c["status"]))


def test_receipts_move_an_sms_on_and_its_callbacks_carry_kind_sms(texting: Texting) -> None:
    stack, shop = texting.stack, texting.shop
    phone = american()
    delivered = shop.post("/v1/sms", {"to": phone, "text": "Parcel", "reference": "r-7"})
    sid = shop.wait_status(delivered, "sent")["provider_ref"]
    assert texting.twilio.status_callbacks[sid] == f"{PUBLIC_URL}/v1/receipts/twilio"
    assert texting.twilio.receipt(sid, "delivered", deliver_to=stack.base).status_code == 200
    shop.wait_status(delivered, "delivered")
    sent, arrived = callbacks(texting, delivered, 2)
    assert [(c["status"], c["kind"], c["reference"], c["segments"]) for c in (sent, arrived)] == [
        ("sent", "sms", "r-7", 1), ("delivered", "sms", "r-7", 1),
    ]  # fmt: skip
    assert phone not in json.dumps([sent, arrived])
    # Tencent's push of a failure: undelivered, with its code.
    cn = mainland()
    texting.ali.plan(cn, aliyun.THROTTLED)
    failed = shop.post("/v1/sms", {"to": cn, "template": "shipped", "data": DATA})
    record = shop.wait_status(failed, "sent")
    (by_tencent,) = tencent_got(texting, cn)
    assert record["provider_ref"] == by_tencent.serial_no
    push = requests.post(
        f"{stack.base}/v1/receipts/tencent", params={"token": TENCENT_TOKEN},
        json=texting.ten.receipt(by_tencent.serial_no, success=False, errmsg="002"), timeout=10,
    )  # fmt: skip
    assert push.json() == {"result": 0, "errmsg": "OK"}
    assert shop.wait_status(failed, "undelivered")["error"] == "Tencent 002"
    assert [c["status"] for c in callbacks(texting, failed, 2)] == ["sent", "undelivered"]


def test_a_scheduled_sms_waits_for_send_at_and_another_is_cancelled(texting: Texting) -> None:
    stack = texting.stack
    soon, later = american(), american()
    at = (datetime.now(UTC) + timedelta(seconds=3)).isoformat()
    waiting = texting.send(to=soon, text="Tomorrow at 9", send_at=at)
    cancelled = texting.send(
        to=later, text="Next week", send_at=(datetime.now(UTC) + timedelta(hours=1)).isoformat()
    )
    assert stack.status(waiting)["status"] == "scheduled"
    answer = stack.delete(f"/v1/notifications/{cancelled}")
    assert (answer.status_code, answer.json()["status"]) == (200, "cancelled")
    record = stack.wait_status(waiting, "sent", timeout=60)
    assert record["kind"] == "sms"
    (message,) = twilio_got(texting, soon)
    assert message["Body"] == "Tomorrow at 9"
    assert stack.status(cancelled)["status"] == "cancelled"
    assert twilio_got(texting, later) == []
    assert stack.delete(f"/v1/notifications/{waiting}").status_code == 409


def test_an_idempotency_key_sends_one_sms_however_often_it_is_posted(texting: Texting) -> None:
    phone = american()
    key = {"Idempotency-Key": f"sms-{uuid.uuid4().hex}"}
    body = {"to": phone, "text": "Once", "reference": "once"}
    first = texting.sms(body, **key)
    again = texting.sms(body, **key)
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    record = texting.stack.wait_status(first.json()["id"], "sent")
    assert record["reference"] == "once"
    assert texting.sms({**body, "text": "Twice"}, **key).status_code == 409
    assert [m["Body"] for m in twilio_got(texting, phone)] == ["Once"]


def test_test_keys_magic_numbers_come_to_their_outcomes_and_reach_no_peer(
    texting: Texting,
) -> None:
    peers = texting.peer_requests()
    named = {"template": "shipped", "data": DATA}
    expected = {
        texting.sandbox.post("/v1/sms", {"to": mainland(), **named}): ("delivered", 1),
        texting.sandbox.post("/v1/sms", {"to": "+8613800000001", **named}): ("sent", 3),
        texting.sandbox.post("/v1/sms", {"to": "+8613800000002", **named}): ("failed", 1),
        texting.sandbox.post("/v1/sms", {"to": american(), "text": "Hi"}): ("delivered", 1),
    }
    for notification_id, (status, attempts) in expected.items():
        record = texting.sandbox.wait_status(notification_id, status)
        assert (record["kind"], record["attempts"], record["provider"]) == (
            "sms", attempts, "test",
        ), record  # fmt: skip
    assert texting.peer_requests() == peers
    metrics = texting.stack.get("/metrics").text
    assert 'notifier_notifications_total{kind="sms",mode="test",status="failed"} ' in metrics


def test_the_fraud_guard_refuses_with_422_naming_to_before_anything_else(
    texting: Texting,
) -> None:
    """Before the content is looked at, and before a batch takes any of the client's
    allowance of pending rows: a refused number costs nothing and reaches no one."""
    before, peers = texting.records(), texting.peer_requests()
    state = redis.Redis.from_url(texting.stack.env["NOTIFIER_REDIS_URL"], decode_responses=True)
    pending = state.hgetall("notifier:batch_pending:tester")
    for to in ("+44 7400 123456", "+1 900 209 0123"):
        refused = texting.sms({"to": to, "template": "nope"})
        assert refused.status_code == 422, refused.text
        assert [e["loc"] for e in refused.json()["errors"]] == [["body", "to"]]
    rows = [{"to": n, "data": DATA} for n in americans(3)]
    rows[1]["to"] = "+19002090123"
    answer = texting.stack.post("/v1/sms/batch", {"template": "shipped", "recipients": rows})
    assert answer.status_code == 422, answer.text
    assert [e["loc"] for e in answer.json()["errors"]] == [["body", "recipients", 1, "to"]]
    assert state.hgetall("notifier:batch_pending:tester") == pending
    assert texting.records() == before and texting.peer_requests() == peers
    metrics = texting.stack.get("/metrics").text
    assert 'notifier_sms_refused_total{reason="country"} ' in metrics
    assert 'notifier_sms_refused_total{reason="blocked_prefix"} ' in metrics


@pytest.mark.soak
def test_a_2000_row_sms_batch_through_a_far_provider_with_a_captcha_overtaking_it(
    texting: Texting,
) -> None:
    """Twilio 200 ms away: every row reaches it once, the counts add up and never run ahead of
    what it received at any poll, and a captcha posted once the batch drains reaches Twilio
    before half the batch has."""
    stack, twilio = texting.stack, texting.twilio
    numbers = americans(2000)
    rows = [{"to": n, "data": {"shop": "Acme", "order": str(i)}, "reference": f"row-{i}"}
            for i, n in enumerate(numbers)]  # fmt: skip
    twilio.delay = 0.2
    try:
        answer = stack.post("/v1/sms/batch", {"template": "shipped", "recipients": rows})
        assert answer.status_code == 202, answer.text
        batch_id = answer.json()["id"]
        seen: set[str] = set()

        def poll() -> dict[str, Any]:
            found = batch(stack.base, batch_id)  # the counts add up to the total
            with twilio.lock:
                received = sum(n in twilio.arrivals for n in numbers)
            # Recorded sent only once Twilio took it: never ahead of what reached it.
            assert found["counts"].get("sent", 0) <= received, (found, received)
            seen.add(found["status"])
            return found

        wait_for(
            lambda: poll()["counts"].get("sent", 0) >= 100,
            timeout=120,
            what="the batch to be draining",
        )
        phone = american()
        captcha = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
        assert captcha.status_code == 202, captcha.text
        stack.wait_status(captcha.json()["id"], "sent", timeout=60)
        done = wait_for(
            lambda: (
                (b := poll())["status"] == "done"
                and not any(b["counts"].get(s) for s in OPEN)
                and b
            ),
            timeout=300,
            what="the batch to be done",
        )
    finally:
        twilio.delay = 0.0
    assert done["counts"] == {"sent": 2000} and "sending" in seen
    by_number: dict[str, list[str]] = {}
    with twilio.lock:
        for message in twilio.received:
            by_number.setdefault(message["To"], []).append(message["Body"])
        arrived = twilio.arrivals[phone]
        before = sum(twilio.arrivals[n] < arrived for n in numbers)
    assert [len(by_number.get(n, [])) for n in numbers] == [1] * 2000
    assert by_number[numbers[1999]] == ["Acme: your parcel 1999 ships today."]
    assert before < 1000, f"{before} of 2000 rows reached Twilio before the captcha"
    page = stack.get_as(f"/v1/batches/{batch_id}/notifications?status=sent").json()
    first = stack.status(page["items"][0]["id"])
    assert (first["kind"], first["reference"], first["provider"]) == ("sms", "row-0", "twilio")

"""Redis holds no recipient in the clear beyond what a pending send needs (issue 40): mixed traffic
through HTTP, a real worker and the local SES, Twilio and SNS, then every key name and every
value in the stack's Redis database read back (each by its type, the broker's task messages
decoded too) and searched for each recipient and end user's address of that traffic."""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import json
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from typing import Any, cast

import pytest
import redis

from notifier.stores.notifications import payload_key
from notifier.stores.suppressions import key as suppressed_key
from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.events import Events, recipients, record
from tests.support.harness.stack import code_sent_to, new_phone, verify
from tests.support.harness.wait import wait_for
from tests.support.peers import ses_events as documented

pytestmark = pytest.mark.integration
CLIENT_IP = "203.0.113.77"  # the end user's address the codes are asked from


def test_redis_holds_no_recipient_but_a_pending_sends_payload_and_the_suppression_list(
    events: Events,
) -> None:
    stack = events.stack
    mails = recipients("private", 2)
    sent_id = events.post_mail(mails[:1], cc=mails[1:])
    later = recipients("later", 1)
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat().replace("+00:00", "Z")
    scheduled = events.post_mail(later, send_at=send_at)
    sms_phone = new_phone()
    texted = stack.post("/v1/sms", {"to": sms_phone, "text": "Your parcel ships today."})
    assert texted.status_code == 202, texted.text
    # Codes: by SMS and by mail, each verified; and one of each left pending.
    verified_phone, pending_phone = new_phone(), new_phone()
    verified_mail, pending_mail = recipients("code", 2)
    for phone in (verified_phone, pending_phone):
        asked = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login",
                                               "client_ip": CLIENT_IP})  # fmt: skip
        assert asked.status_code == 202, asked.text
    for to in (verified_mail, pending_mail):
        asked = stack.post("/v1/mail/captcha", {"to": to, "purpose": "login",
                                                "client_ip": CLIENT_IP})  # fmt: skip
        assert asked.status_code == 202, asked.text
    assert verify(stack, verified_phone, code_sent_to(stack.twilio, verified_phone)) == {
        "valid": True
    }
    checked = stack.post("/v1/mail/captcha/verify", {
        "to": verified_mail, "purpose": "login", "code": mailed_code(events, verified_mail),
    })  # fmt: skip
    assert checked.json() == {"valid": True}
    code_sent_to(stack.twilio, pending_phone)
    mailed_code(events, pending_mail)
    # A batch, drained.
    batch_rows = rows(3, "privacy")
    accepted = post_batch(stack.base, batch_rows)
    wait_batch(stack.base, accepted["id"], "done")
    events.wait_sent(sent_id, "tester")
    # A bounce that SES reports while its send is not recorded yet: SES answers the send late.
    bounced = recipients("early", 1)
    events.ses.delay = 4.0
    try:
        early_id = events.post_mail(bounced)
        (early,) = wait_for(lambda: events.ses.to(bounced[0]), what="SES to take the mail")
        event = documented.for_mail(early, "Bounce", documented.bounce(bounced))
        assert events.post_ses(event).json() == {"outcome": "early"}
        during = everything(stack.env["NOTIFIER_REDIS_URL"])
    finally:
        events.ses.delay = 0.0
    wait_for(lambda: events.suppression(bounced[0]) == "bounced", what="the kept bounce")
    after = everything(stack.env["NOTIFIER_REDIS_URL"])

    traffic = [
        *mails, *later, sms_phone, verified_phone, pending_phone, verified_mail, pending_mail,
        *(row["to"] for row in batch_rows), *bounced, CLIENT_IP,
    ]  # fmt: skip
    kept_early = f"notifier:receipt:ses:{early.message_id}".encode()
    assert kept_early in during, "the bounce was applied before it could be kept early"
    # Allowed, each for a reason of its own:
    # (a) the payload of a send still pending: what its worker sends (the scheduled mail's, and,
    #     while SES has not answered, the early-bounced mail's);
    # (b) the client's suppression list, which GET /v1/suppressions lists by address (contract).
    # Records hold no recipient: GET /v1/notifications/<id> never shows one (contract), so no
    # record is allowed one.
    assert found_in(during, traffic) == {
        (payload_key(scheduled), later[0]),
        (payload_key(early_id), bounced[0]),
    }
    assert found_in(after, traffic) == {
        (payload_key(scheduled), later[0]),
        (suppressed_key("tester"), bounced[0]),
    }
    assert record(events, early_id)["status"] == "undelivered"


def mailed_code(events: Events, to: str) -> str:
    """The code in the mail SES took for ``to``."""
    (sent,) = wait_for(lambda: events.ses.to(to), what=f"a code's mail to {to}")
    message = email.message_from_bytes(sent.raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"\b(\d{6})\b", text.get_content())
    assert found, text.get_content()
    return found[1]


def everything(url: str) -> dict[bytes, list[bytes]]:
    """Every key of the database at ``url``, with all it holds, as bytes."""
    raw = redis.Redis.from_url(url)
    try:
        return {key: values(raw, key) for key in raw.scan_iter(count=1000)}
    finally:
        raw.close()


def values(raw: redis.Redis, key: bytes) -> list[bytes]:
    """What ``key`` holds, read by its type (a key that expired meanwhile holds nothing), with
    the decoded body of every task message among it (kombu keeps a body in base64)."""
    kind = raw.type(key)
    found: list[Any]
    if kind == b"string":
        found = [raw.get(key)]
    elif kind == b"hash":
        found = [part for pair in raw.hgetall(key).items() for part in pair]
    elif kind == b"list":
        found = raw.lrange(key, 0, -1)
    elif kind == b"set":
        found = list(raw.smembers(key))
    elif kind == b"zset":
        found = raw.zrange(key, 0, -1)
    elif kind == b"stream":
        entries = cast(list[tuple[bytes, dict[bytes, bytes]]], raw.xrange(key))
        found = [part for _, fields in entries for pair in fields.items() for part in pair]
    elif kind == b"none":
        found = []
    else:
        raise AssertionError(f"{key!r} is a {kind!r}: read it too")
    held = [cast(bytes, value) for value in found if value is not None]
    return held + [body for value in held for body in bodies(value)]


def bodies(value: bytes) -> Iterator[bytes]:
    """The base64 ``body`` of every object in ``value``, if it is JSON, decoded."""
    try:
        parsed = json.loads(value)
    except ValueError:
        return
    stack = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack += item
        elif isinstance(item, dict):
            stack += item.values()
            if isinstance(item.get("body"), str):
                with contextlib.suppress(ValueError):  # not base64 (binascii.Error is one)
                    yield base64.b64decode(item["body"], validate=True)


def found_in(dump: dict[bytes, list[bytes]], traffic: list[str]) -> set[tuple[str, str]]:
    """Each (key, recipient) where the key's name or what it holds spells the recipient, in any
    case (a phone with or without its ``+``)."""
    found = set()
    for key, held in dump.items():
        text = b"\0".join([key, *held]).lower()
        for recipient in traffic:
            if recipient.lower().removeprefix("+").encode() in text:
                found.add((key.decode(), recipient))
    return found

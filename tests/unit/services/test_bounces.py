"""Bounces: VERP envelope senders, DSNs as Postfix writes them, and what a bounce moves (a real
Redis, the in-memory provider)."""

from __future__ import annotations

import io
from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.errors import Unavailable
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.services.bounces import UNRECORDED_RETRY_AFTER, Bounces, failures, take_bounce
from notifier.services.mail import deliver_mail
from tests.support.delivery import delivery
from tests.support.harness.dsn import dsn
from tests.support.harness.mail import PAYLOAD

BOUNCES = Bounces("bounces.example.com", b"k" * 32)
ID = "0f8fad5b-d9cb-469f-a165-70867728950e"


def test_the_envelope_sender_names_the_notification_and_its_recipient() -> None:
    sender = BOUNCES.envelope_sender(ID, "Ada@Example.com")
    local, _, domain = sender.partition("@")
    assert domain == "bounces.example.com" and len(local) <= 64
    assert BOUNCES.notification_of(sender, "ada@example.com") == ID
    assert BOUNCES.notification_of(sender, "eve@example.com") is None  # another recipient
    assert (
        BOUNCES.notification_of(
            sender.replace("bounces.example.com", "x.example"), "ada@example.com"
        )
        is None
    )
    forged = sender[: -len("@bounces.example.com") - 1] + ("0" if sender[-21] != "0" else "1")
    assert BOUNCES.notification_of(forged + "@bounces.example.com", "ada@example.com") is None
    other = Bounces("bounces.example.com", b"j" * 32)
    assert other.notification_of(sender, "ada@example.com") is None  # another secret


def test_a_postfix_dsn_is_read() -> None:
    to, blocks = failures(dsn("bounces+x@b.example", "gone@example.com"))
    assert to == "bounces+x@b.example"
    ((block),) = blocks
    assert (block.recipient, block.action, block.status, block.hard) == (
        "gone@example.com", "failed", "5.1.1", True,
    )  # fmt: skip
    assert "User unknown" in block.diagnostic
    assert failures(b"From: a@example.com\r\nSubject: hi\r\n\r\nnot a DSN\r\n")[1] == []


def created(rt: Runtime, to: str = "gone@example.com") -> str:
    """A mail to ``to`` alone, accepted and not sent yet."""
    payload = {**PAYLOAD, "client": "c", "to": [to], "bcc": []}
    return rt.store.create(notification_id=ID, client="c", kind="mail", payload=payload).id


def sent(rt: Runtime, to: str = "gone@example.com", bounces: Bounces = BOUNCES) -> str:
    notification_id = created(rt, to)
    mail = MemoryMailProvider()
    deliver_mail(delivery(rt, mail=mail, bounces=bounces), notification_id)
    assert mail.sent[0].envelope_from == bounces.envelope_sender(notification_id, to)
    return mail.sent[0].envelope_from or ""


def take(rt: Runtime, raw: bytes) -> str:
    return take_bounce(raw, bounces=BOUNCES, store=rt.store, suppressions=rt.suppressions)


def test_a_hard_bounce_makes_it_undelivered_and_suppresses_the_address(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    assert take(rt, dsn(envelope, "gone@example.com")) == "undelivered"
    record = rt.store.get(ID)
    assert record is not None and record.status == "undelivered"
    assert record.error is not None and record.error.startswith("bounced: 5.1.1")
    entry = rt.suppressions.get("c", "gone@example.com")
    assert entry is not None and entry.reason == "bounced"
    # The same DSN again (a reused token) moves nothing; nor after the client took the address
    # off its list: that is the client's word, a replay does not overrule it.
    assert take(rt, dsn(envelope, "gone@example.com")) == "undelivered"
    assert rt.suppressions.remove("c", "gone@example.com")
    assert take(rt, dsn(envelope, "gone@example.com")) == "undelivered"
    assert rt.suppressions.get("c", "gone@example.com") is None
    assert rt.store.counted("final:mail:undelivered:live") == 1
    assert rt.store.counted("bounces:hard") == 1


def test_a_soft_bounce_is_shown_on_the_record_and_suppresses_nothing(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    before = rt.store.get(ID)
    assert before is not None and "soft_bounce" not in before.public()
    for diagnostic in ("452 4.2.2 Mailbox full", "451 4.7.1 Try again later"):
        raw = dsn(envelope, "gone@example.com", status=diagnostic.split()[1],
                  action="delayed", diagnostic=f"smtp; {diagnostic}")  # fmt: skip
        assert take(rt, raw) == "soft"
    record = rt.store.get(ID)
    assert record is not None and record.status == "sent"
    shown = record.public()  # what GET /v1/notifications/<id> answers
    assert shown["status"] == "sent" and shown["error"] is None
    # The last one: its status and the remote server's reply.
    assert shown["soft_bounce"]["status"] == "4.7.1"
    assert shown["soft_bounce"]["diagnostic"] == "451 4.7.1 Try again later"
    assert shown["soft_bounce"]["at"].endswith("Z")
    assert rt.suppressions.get("c", "gone@example.com") is None
    assert rt.store.counted("bounces:soft") == 2


def test_a_dsn_given_up_with_a_4xx_status_is_undelivered_and_suppresses_nothing(
    app: Flask,
) -> None:
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    # Postfix gave up after its queue lifetime: failed, but the mailbox may be fine.
    raw = dsn(envelope, "gone@example.com", status="4.4.7", action="failed",
              diagnostic="smtp; 452 4.2.2 Mailbox full")  # fmt: skip
    assert take(rt, raw) == "undelivered"
    record = rt.store.get(ID)
    assert record is not None and record.status == "undelivered"
    assert record.error == "bounced: 4.4.7 452 4.2.2 Mailbox full"
    assert rt.suppressions.get("c", "gone@example.com") is None
    assert rt.store.counted("final:mail:undelivered:live") == 1
    assert rt.store.counted("bounces:expired") == 1
    assert rt.store.counted("bounces:hard") == 0


@pytest.mark.parametrize(
    ("status", "diagnostic"),
    [
        ("5.7.1", "smtp; 554 5.7.1 Service unavailable; client host blocked using Spamhaus"),
        ("5.3.4", "smtp; 552 5.3.4 Message size exceeds fixed limit"),
        # About our sender, not the recipient (RFC 3463: bad sender's mailbox syntax, system).
        ("5.1.7", "smtp; 553 5.1.7 The sender address <bounces+x@b.example> is not valid"),
        ("5.1.8", "smtp; 553 5.1.8 Domain of sender address bounces+x@b.example does not exist"),
    ],
)
def test_a_hard_bounce_that_says_nothing_of_the_address_suppresses_nothing(
    app: Flask, status: str, diagnostic: str
) -> None:
    # RFC 3463: only X.1.x but X.1.7 and X.1.8 (and 5.2.1, disabled) says the recipient's
    # address is bad. A policy block of the
    # sending IP suppressed every recipient of it, login codes too (fxa-auth-server#1893).
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    raw = dsn(envelope, "gone@example.com", status=status, diagnostic=diagnostic)
    assert take_bounce(raw, bounces=BOUNCES, store=rt.store, suppressions=rt.suppressions,
                       guard=rt.guard) == "undelivered"  # fmt: skip
    record = rt.store.get(ID)
    assert record is not None and record.status == "undelivered"
    assert rt.suppressions.get("c", "gone@example.com") is None
    assert rt.store.counted("bounces:refused") == 1 and rt.store.counted("bounces:hard") == 0
    assert rt.guard.figures(["c"])["c"].counts["bounce"] == 1  # the sender's standing, still


def test_a_bounce_from_behind_a_forward_is_the_original_recipients(app: Flask) -> None:
    # Final-Recipient is where the forward led (RFC 3464 2.3.2): the token is of the address
    # the mail was sent to, Original-Recipient. It was ignored: no undelivered, no suppression.
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    raw = dsn(envelope, "gone@example.com", final="gone.fwd@mail.example")
    assert take(rt, raw) == "undelivered"
    assert rt.suppressions.get("c", "gone@example.com") is not None
    assert rt.suppressions.get("c", "gone.fwd@mail.example") is None


@pytest.mark.parametrize("encoding", [None, "base64", "quoted-printable"])
def test_a_dsn_of_a_mail_sent_with_smtputf8_is_read(app: Flask, encoding: str | None) -> None:
    # message/global-delivery-status (RFC 6533), as UTF-8 text or encoded, as RFC 6533 allows.
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt, to="用户@例子.广告")
    raw = dsn(envelope, "用户@例子.广告", utf8=True, encoding=encoding)
    assert take(rt, raw) == "undelivered"
    assert rt.suppressions.get("c", "用户@例子.广告") is not None


def test_a_forged_dsn_changes_nothing(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    envelope = sent(rt)
    # Another address than the one the token was made for, and a token never made.
    assert take(rt, dsn(envelope, "victim@example.com")) == "ignored"
    made_up = "bounces+" + "0" * 32 + "-" + "0" * 16 + "@bounces.example.com"
    assert take(rt, dsn(made_up, "gone@example.com")) == "ignored"
    record = rt.store.get(ID)
    assert record is not None and record.status == "sent"
    assert rt.suppressions.get("c", "victim@example.com") is None
    assert rt.suppressions.get("c", "gone@example.com") is None


def test_the_route_wants_its_token(client: FlaskClient) -> None:
    assert client.post("/v1/bounces", data=b"x").status_code == 403


def test_a_dsn_before_its_send_is_recorded_is_refused_for_now_then_taken(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    created(rt)  # queued: the relay refused before the worker recorded the send
    envelope = BOUNCES.envelope_sender(ID, "gone@example.com")
    with pytest.raises(Unavailable) as refused:
        take(rt, dsn(envelope, "gone@example.com"))
    assert refused.value.retry_after == UNRECORDED_RETRY_AFTER
    record = rt.store.get(ID)
    assert record is not None and record.status == "queued"
    assert rt.suppressions.get("c", "gone@example.com") is None
    # The MTA brings it again once the send is recorded: now it moves the notification.
    assert sent(rt) == envelope
    assert take(rt, dsn(envelope, "gone@example.com")) == "undelivered"
    entry = rt.suppressions.get("c", "gone@example.com")
    assert entry is not None and entry.reason == "bounced"


def test_the_route_answers_a_dsn_before_its_send_503_with_retry_after(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(bounce_domain="bounces.example.com", bounce_token="t" * 24)
    app = create_app(settings)
    rt: Runtime = app.extensions["notifier"]
    assert rt.bounces is not None
    created(rt)
    raw = dsn(rt.bounces.envelope_sender(ID, "gone@example.com"), "gone@example.com")
    answer = app.test_client().post(f"/v1/bounces?token={'t' * 24}", data=raw)
    assert answer.status_code == 503, answer.text
    assert answer.mimetype == "application/problem+json"
    assert answer.headers["Retry-After"] == str(UNRECORDED_RETRY_AFTER)
    assert "not recorded yet" in answer.get_json()["detail"]
    # A message that is not a DSN of ours is still answered 200: the MTA would bring it forever.
    other = app.test_client().post(f"/v1/bounces?token={'t' * 24}", data=b"Subject: hi\r\n\r\nhi")
    assert other.status_code == 200 and other.get_json() == {"outcome": "ignored"}


def test_a_message_past_the_size_limit_is_413_sent_whole_or_chunked(
    make_settings: Callable[..., Settings],
) -> None:
    # An MTA's pipe may send a large DSN (the whole original mail back) chunked: it is refused
    # as one with a Content-Length is, not read cut short at the limit and acted on.
    settings = make_settings(bounce_domain="bounces.example.com", bounce_token="t" * 24)
    client = create_app(settings).test_client()
    raw = b"Subject: hi\r\n\r\n" + b"x" * settings.max_body_size
    whole = client.post(f"/v1/bounces?token={'t' * 24}", data=raw)
    assert whole.status_code == 413 and whole.mimetype == "application/problem+json"
    chunked = client.post(
        f"/v1/bounces?token={'t' * 24}",
        input_stream=io.BytesIO(raw),
        environ_overrides={"wsgi.input_terminated": True},
    )
    assert chunked.status_code == 413 and chunked.mimetype == "application/problem+json"

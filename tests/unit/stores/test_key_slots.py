"""Every Redis operation of the stores stays within one hash slot, as Redis Cluster requires.

Each test drives one family of stores through what the services do with them, under
:class:`~tests.support.harness.keyslots.SlotWatch`, and fails listing what Cluster would refuse,
ids replaced by placeholders so that each fault shows once.
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from flask import Flask

from config import ApiClient, Settings
from notifier import create_app
from notifier.console.auth import NAME_LIMIT, LoginLimit, Sessions
from notifier.errors import Limited
from notifier.lanes import LANES
from notifier.providers.memory import MemoryMailProvider, MemorySmsProvider
from notifier.redisconn import NotReplicated, Replication
from notifier.runtime import Runtime
from notifier.schemas import (
    BatchRequest,
    CaptchaRequest,
    MailCaptchaRequest,
    MailRequest,
    MailVerifyRequest,
    VerifyRequest,
)
from notifier.services.batches import accept_batch, cancel_batch, fan_out
from notifier.services.captcha import (
    MAIL,
    accept_captcha,
    deliver_captcha,
    deliver_mail_captcha,
    verify_captcha,
)
from notifier.services.delivery import Attempt, store_and_queue
from notifier.services.mail import accept_mail, deliver_mail
from notifier.services.mail_events import MailEvent
from notifier.services.message_log import LogFilter, page, timeline
from notifier.services.receipts import twilio_receipt
from notifier.stores.batches import row_id
from notifier.stores.captchas import Sender
from notifier.stores.idempotency import Answer, Pending
from notifier.stores.rate_limits import Rate
from notifier.stores.scripts import by_sha
from notifier.tasks.schedule import LOST_AFTER, dispatch_due, requeue_lost
from tests.support.delivery import delivery
from tests.support.harness.batches import rows
from tests.support.harness.captcha import PHONE
from tests.support.harness.clients import api_clients, callback_client
from tests.support.harness.keyslots import SlotWatch, Violation

CLIENT = "hooked"  # wants status callbacks, so the stores queue them too
SECRET = "whsec_" + base64.b64encode(b"a secret of enough bytes").decode()
# What varies from run to run in a key, and what stands for it in the report.
PLACEHOLDERS = (
    (re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"), "<id>"),
    (re.compile(r"[0-9a-f]{64}"), "<sha256>"),
    (re.compile(r"[0-9a-f]{32}"), "<hex>"),
    (re.compile(r"\+\d{6,15}"), "<phone>"),
)


def broker_key(key: str) -> bool:
    """A key of the Celery broker: a lane's list (``mail``, or ``mail\\x06\\x163`` for one of
    kombu's priority steps, as MONITOR writes it) or kombu's own bookkeeping.

    With the broker on the state Redis (these tests' set-up), the stores push task messages in
    their own transactions and scripts. A Cluster deployment cannot do that: kombu's Redis
    transport does not speak Cluster, so the broker stays on a Redis of its own (Sentinel) or
    RabbitMQ, the stores publish after they write, and these keys are not on the Cluster at all.
    """
    lane = key.partition("\\x06\\x16")[0]
    return lane in LANES or key.startswith(("_kombu.", "unacked"))


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """An app whose client 'hooked' wants status callbacks."""
    hooked = callback_client(CLIENT, "ntf_hooked", "http://127.0.0.1:9/hook", SECRET)
    return create_app(make_settings(api_keys=[*api_clients(), ApiClient.model_validate(hooked)]))


@pytest.fixture
def rt(app: Flask) -> Runtime:
    """The app's runtime."""
    found: Runtime = app.extensions["notifier"]
    return found


@pytest.fixture
def watch(rt: Runtime) -> Callable[[], SlotWatch]:
    """A SlotWatch on the app's Redis that knows the stores' scripts by name."""
    # The layout's scripts move keys of the layout before hash tags, on a Redis that is no
    # Cluster (tests/unit/stores/test_lua.py runs them).
    names = {sha: name for sha, name in by_sha().items() if not name.startswith("layout/")}
    return lambda: SlotWatch(rt.redis_url, ignore=broker_key, names=names)


def pattern(text: str) -> str:
    for regex, placeholder in PLACEHOLDERS:
        text = regex.sub(placeholder, text)
    return text


def report(found: list[Violation]) -> str:
    """One line a kind of fault: its kind, the operation, its keys (ids as placeholders, each
    key pattern once) and, for undeclared keys, the Lua commands that used them."""
    lines: dict[tuple[str, str, str], set[str]] = {}
    for v in found:
        operation, via = v.command, ""
        if v.kind == "undeclared key in script":
            operation, _, via = v.command.rpartition(" ")
        keys = " ".join(dict.fromkeys(pattern(repr(k)) for k in v.keys))
        lines.setdefault((v.kind, operation, keys), set()).add(via)
    return "\n".join(
        f"{kind:<25} {operation:<40} {keys}" + (f"  ({' '.join(sorted(via))})" if any(via) else "")
        for (kind, operation, keys), via in sorted(lines.items())
    )


# The scripts each test below must have run: together, every script of the stores (checked by
# test_every_script_of_the_stores_is_run_here), so a new one cannot go unwatched.
RUNS = {
    "notifications": {
        "notifications/claim", "notifications/settle", "notifications/receipt",
        "notifications/cancel", "notifications/soft_bounce", "notifications/index_ref",
        "notifications/logged", "notifications/log_page", "notifications/note",
        "notifications/discard",
    },
    "batches": {"batches/take_pending", "batches/fan_out", "batches/cancel",
                "batches/published", "batches/discard"},
    "captchas": {"captchas/take_recipient", "captchas/take_ip", "captchas/purpose_label"},
    "keys": {"idempotency/reserve", "idempotency/note", "rate_limits/take"},
    "suppressions": {"suppressions/add"},
    "console": {"console/take_login"},
    "events": {"notifications/mail_event", "guard/note"},
    "dispatch": {"notifications/lease_due", "notifications/dispatched"},
}  # fmt: skip


def assert_single_slot(seen: SlotWatch, runs: str) -> None:
    """Fail with the report (not the raw list, whose ids hide the pattern) unless it is empty;
    and unless the scripts of ``RUNS[runs]`` ran in it."""
    if seen.violations:
        text = report(seen.violations)
        pytest.fail(f"{len(text.splitlines())} kinds of operation Cluster refuses:\n{text}")
    ran = {
        seen.names.get(op.head.args[1], "")
        for op in seen.operations
        for op in (op, *op.parts)
        if op.kind == "script" and op.head.name == "EVALSHA" and op.body
    }
    assert RUNS[runs] <= ran, f"never ran: {sorted(RUNS[runs] - ran)}"


def test_every_script_of_the_stores_is_run_here(watch: Callable[[], SlotWatch]) -> None:
    assert set(watch().names.values()) == set().union(*RUNS.values())


def later(seconds: float) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


def test_notifications_move_within_one_slot(rt: Runtime, watch: Callable[[], SlotWatch]) -> None:
    store = rt.store
    mail = MailRequest.model_validate({"to": ["a@example.com"], "subject": "Hi", "text": "Hello"})
    with watch() as seen:
        # Accepted with its message, claimed, sent, and its receipt.
        sent = accept_mail(
            mail, client=CLIENT, sender="n@example.com", store=store, templates=rt.templates,
            queue=rt.mail_queue,
        )  # fmt: skip
        deliver_mail(delivery(rt, mail=MemoryMailProvider()), sent.id)
        store.settle(sent.id, "sent", provider="smtp", only_if_waiting=True)  # late: moves nothing
        sms = store_and_queue(store, rt.captcha_queue, client=CLIENT, kind="sms", payload={})
        store.claim(sms.id, lease=30, max_attempts=3)
        store.claim(sms.id, lease=30, max_attempts=3)  # busy: another claim holds it
        store.settle(sms.id, "sent", provider="twilio", provider_ref=f"SM{sms.id}")
        twilio_receipt({"MessageSid": f"SM{sms.id}", "MessageStatus": "delivered"}, store=store)
        assert store.soft_bounce(sent.id, "4.2.2", "mailbox full")  # a bounce that is only soft
        # A receipt that comes before its send is recorded.
        early = str(uuid.uuid4())
        store.receipt("twilio", f"SM{early}", "undelivered", error="Twilio error 30003")
        store.create(notification_id=early, client=CLIENT, kind="sms", payload={})
        store.claim(early, lease=30, max_attempts=3)
        store.settle(early, "sent", provider="twilio", provider_ref=f"SM{early}")
        # Retrying, then failed; and out of attempts at the claim.
        failing = store_and_queue(store, rt.mail_queue, client=CLIENT, kind="mail", payload={})
        for attempt in (1, 2):
            store.claim(failing.id, lease=30, max_attempts=2)
            Attempt(store, failing.id, attempt, {}, max_attempts=2).failed("451", provider="smtp")
        spent = store_and_queue(store, rt.mail_queue, client=CLIENT, kind="mail", payload={})
        store.claim(spent.id, lease=30, max_attempts=0)
        # Scheduled, then cancelled one by one and many at once; one due, leased, dispatched.
        scheduled = [
            store.create(
                notification_id=str(uuid.uuid4()), client=CLIENT, kind="mail", payload={},
                send_at=time.time() + 600,
            ).id
            for _ in range(3)
        ]  # fmt: skip
        store.cancel(scheduled[0])
        store.cancel_many([*scheduled[1:], str(uuid.uuid4())])
        due = str(uuid.uuid4())
        store.create(notification_id=due, client=CLIENT, kind="mail", payload={},
                     send_at=time.time() - 1)  # fmt: skip
        for leased in store.lease_due(now=time.time(), lease=60):
            store.dispatched(leased)
        # The open index, a record's reads, a test code, a counter; a record never accepted.
        for found in store.open_since(time.time() + 60):
            store.reopened(found, after=5)
        store.forget_open(due)
        store.get(due)
        store.payload(due)
        store.show_test_code(due, "123456")
        store.count("callbacks:sent")
        store.discard(due)
        # The message log: a callback on a timeline, a page, a search, a timeline read.
        store.note(sent.id, "callback", outcome="HTTP 200", detail="delivered")
        page(rt, LogFilter(client=CLIENT, status="sent"))
        page(rt, LogFilter(recipient="a@example.com"))
        timeline(rt, sent.id)
    assert_single_slot(seen, "notifications")


def test_batches_move_within_one_slot(rt: Runtime, watch: Callable[[], SlotWatch]) -> None:
    def accept(n: int, **extra: Any) -> str:
        request = BatchRequest.model_validate(
            {"template": "welcome", "recipients": rows(n, "k"), **extra}
        )
        return accept_batch(
            request, client=CLIENT, sender="n@example.com", store=rt.batches,
            templates=rt.templates, queue=rt.fan_out_queue, max_pending=1000, callback=True,
        ).id  # fmt: skip

    mails = MemoryMailProvider()
    with watch() as seen:
        # Sent now, fanned out, every row sent until the batch is done (and its callback due).
        done = accept(3)
        fan_out(done, store=rt.batches, queues=rt.row_queue_of)
        for index in range(3):
            deliver_mail(delivery(rt, mail=mails), row_id(done, index))
        batch = rt.batches.get(done)
        assert batch is not None and batch.status == "done"
        rt.batches.page(batch, status="sent", start=0, limit=2, scan=100)
        # Scheduled: paged before any row is made, and pending while the next is accepted.
        scheduled = accept(2, send_at=later(600))
        waiting = rt.batches.get(scheduled)
        assert waiting is not None
        rt.batches.page(waiting, status=None, start=0, limit=10, scan=100)
        partial = accept(2)
        cancel_batch(scheduled, store=rt.batches, notifications=rt.store)
        # Fanned out, a row sending, cancelled: the row's retry is cancelled instead.
        fan_out(partial, store=rt.batches, queues=rt.row_queue_of)
        rt.store.claim(row_id(partial, 0), lease=30, max_attempts=3)
        cancel_batch(partial, store=rt.batches, notifications=rt.store)
        Attempt(rt.store, row_id(partial, 0), 1, {}, max_attempts=3).failed("451", provider="smtp")
        # One never accepted: its allowance given back, the batch discarded.
        rt.batches.published(done, 3)  # what a broker other than this Redis records
        rt.batches.give_back(CLIENT, partial)
        rt.batches.discard(partial)
    assert_single_slot(seen, "batches")


def test_captchas_move_within_one_slot(rt: Runtime, watch: Callable[[], SlotWatch]) -> None:
    policy = rt.captcha_policy

    def accept(purpose: str, test: bool = False) -> str:
        body = CaptchaRequest.model_validate(
            {"phone": PHONE, "purpose": purpose, "client_ip": "198.51.100.7"}
        )
        return accept_captcha(
            body, client=CLIENT, policy=policy, store=rt.store, captchas=rt.captchas,
            queue=rt.captcha_queue, test=test,
        ).id  # fmt: skip

    def verify(code: str) -> None:
        body = VerifyRequest.model_validate({"phone": PHONE, "purpose": "login", "code": code})
        verify_captcha(body, client=CLIENT, policy=policy, captchas=rt.captchas, store=rt.store)

    sms = MemorySmsProvider()
    with watch() as seen:
        login = accept("login")
        with pytest.raises(Limited):
            accept("login")  # within the resend interval
        deliver_captcha(delivery(rt, sms=[sms]), login)
        code = re.findall(r"\b\d{6}\b", sms.sent[-1][1])[0]
        verify("000000" if code != "000000" else "111111")  # a wrong try
        verify(code)
        verify(code)  # used: gone
        # A test key's: simulated, its code shown in its record, its receipt applied.
        signup = accept("signup", test=True)
        deliver_captcha(delivery(rt, sms=[]), signup)
        rt.captchas.give_back(Sender("tester", "reset", PHONE, "2001:db8::1"), member="m")
        # A code by mail: an address's limits and code, in the address's slot.
        ask = MailCaptchaRequest.model_validate({"to": "Ada@Example.com", "purpose": "login"})
        mailed = accept_captcha(
            ask, channel=MAIL, client=CLIENT, policy=policy, store=rt.store,
            captchas=rt.captchas, queue=rt.mail_captcha_queue,
        ).id  # fmt: skip
        mail = MemoryMailProvider()
        deliver_mail_captcha(delivery(rt, mail=mail), mailed)
        code = re.findall(r"\b\d{6}\b", mail.sent[-1].text or "")[0]
        check = MailVerifyRequest.model_validate({"to": ask.to, "purpose": "login", "code": code})
        assert verify_captcha(
            check, channel=MAIL, client=CLIENT, policy=policy, captchas=rt.captchas
        ).valid
    assert_single_slot(seen, "captchas")


def test_idempotency_keys_and_rate_limits_stay_within_one_slot(
    rt: Runtime, watch: Callable[[], SlotWatch]
) -> None:
    keys = rt.idempotency
    with watch() as seen:
        slot = keys.slot(CLIENT, "key-1")
        assert keys.reserve(slot, "fingerprint") == "new"
        assert keys.reserve(slot, "fingerprint") == Pending()
        keys.note(slot, "fingerprint", "a-notification-id", "queued")
        assert isinstance(noted := keys.reserve(slot, "fingerprint"), Pending) and noted.id
        keys.keep(slot, Answer(202, "{}", "/v1/notifications/x"))
        assert isinstance(keys.reserve(slot, "fingerprint"), Answer)
        keys.free(slot)
        assert rt.limiter.take(CLIENT, Rate.parse("10/s")) == 0.0
    assert_single_slot(seen, "keys")


def test_suppressions_and_unsubscribe_links_stay_within_one_slot(
    rt: Runtime, watch: Callable[[], SlotWatch]
) -> None:
    with watch() as seen:
        rt.suppressions.add(CLIENT, "Ada@example.com", "unsubscribed")
        rt.suppressions.add(CLIENT, "ada@example.com", "bounced")  # replaces the unsubscribe
        assert rt.suppressions.blocked(CLIENT, ["ada@example.com", "b@example.com"], bulk=False)
        rt.suppressions.page(CLIENT, 0)
        rt.suppressions.remove(CLIENT, "ada@example.com")
        assert rt.unsubscribes.find(rt.unsubscribes.token(CLIENT, "ada@example.com"))
    assert_single_slot(seen, "suppressions")


def test_the_consoles_login_limit_and_sessions_stay_within_one_slot(
    rt: Runtime, watch: Callable[[], SlotWatch]
) -> None:
    limit, sessions = LoginLimit(rt.redis), Sessions(rt.redis)
    with watch() as seen:
        for _ in range(NAME_LIMIT):
            assert limit.take("ada", "203.0.113.7").wait is None
        assert limit.take("ada", "203.0.113.7").wait
        limit.forgive(limit.take("bob", "203.0.113.7"))
        token = sessions.begin("bob", None)
        assert sessions.find(token)
        sessions.end(token)
    assert_single_slot(seen, "console")


def test_mail_events_and_the_guard_stay_within_one_slot(
    rt: Runtime, watch: Callable[[], SlotWatch]
) -> None:
    mail = MailRequest.model_validate(
        {"to": ["a@example.com", "b@example.com"], "subject": "Hi", "text": "Hello"}
    )

    def accepted() -> str:
        return accept_mail(
            mail, client=CLIENT, sender="n@example.com", store=rt.store, templates=rt.templates,
            queue=rt.mail_queue,
        ).id  # fmt: skip

    def event(ref: str, kind: Any, to: str, **more: Any) -> MailEvent:
        return MailEvent("ses", ref, kind, to, "2026-12-03T12:00:00.000Z", **more)

    ses = MemoryMailProvider(name="ses")
    with watch() as seen:
        # A mail sent: delivered to one, bounced by the other, complained of, deferred.
        sent = accepted()
        deliver_mail(delivery(rt, mail=ses), sent)
        ref = f"<{sent}@ses>"
        rt.mail_events.apply([
            event(ref, "delivered", "a@example.com"), event(ref, "bounced", "b@example.com"),
            event(ref, "complained", "a@example.com", feedback="abuse"),
            event(ref, "soft", "a@example.com", status="4.2.2"),
        ])  # fmt: skip
        # An event before its send is recorded: kept, and applied by the settle.
        early = accepted()
        rt.mail_events.apply([event(f"<{early}@ses>", "bounced", "a@example.com")])
        deliver_mail(delivery(rt, mail=ses), early)
        rt.guard.figures([CLIENT, "another"])
        rt.guard.paused(CLIENT)
        rt.guard.resume(CLIENT)
    assert_single_slot(seen, "events")
    record = rt.store.get(sent)
    assert record is not None and record.status == "delivered" and record.complaint is not None


def test_dispatch_metrics_and_replication_stay_within_one_slot(
    app: Flask, rt: Runtime, watch: Callable[[], SlotWatch]
) -> None:
    store = rt.store
    lost = store_and_queue(store, rt.mail_queue, client=CLIENT, kind="mail", payload={}).id
    rt.redis.delete(*LANES)  # its message lost: requeue_lost puts it back
    store.create(notification_id=str(uuid.uuid4()), client=CLIENT, kind="mail", payload={},
                 send_at=time.time() - 1)  # fmt: skip
    with watch() as seen:
        assert dispatch_due() == 1
        rt.redis.delete(rt.mail_queue.queue)  # the due one's message lost too, and none ahead
        assert requeue_lost(rt, now=time.time() + LOST_AFTER + 1) == 1
        list(rt.metrics.collect())
        with pytest.raises(NotReplicated):  # no replica here: the mark and WAIT, then refused
            Replication(1, 10).confirm(rt.redis, 0)
    assert rt.store.get(lost) is not None
    assert_single_slot(seen, "dispatch")

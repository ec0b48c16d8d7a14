"""Redis fills up (maxmemory, noeviction) while a provider takes a send: the send is recorded
``sent`` all the same, so no later attempt (a retry, the sweep's after the lease) sends it again.

Each provider here fills a real Redis of the test's own with a real ``CONFIG SET maxmemory`` the
moment it takes the message, between the provider's answer and the record (issue 35: 5 of 5
SMS captchas went out twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import redis

from config import Settings
from notifier import create_app
from notifier.providers.base import OutgoingMail
from notifier.providers.memory import MemoryMailProvider, MemorySmsProvider
from notifier.runtime import Runtime
from notifier.schemas import MailCaptchaRequest
from notifier.services.captcha import MAIL, accept_captcha, deliver_captcha, deliver_mail_captcha
from notifier.services.delivery import Outcome
from notifier.services.mail import deliver_mail
from tests.support.delivery import delivery
from tests.support.harness.api import MAIL as A_MAIL
from tests.support.harness.api import queued_messages
from tests.support.harness.captcha import NoQueue, accept
from tests.support.harness.clients import auth
from tests.support.harness.mail import PAYLOAD
from tests.support.peers.redis_server import RedisServer


@pytest.fixture
def rt(make_settings: Callable[..., Settings], fillable: RedisServer) -> Runtime:
    found: Runtime = create_app(make_settings(redis_url=fillable.url())).extensions["notifier"]
    return found


class FillingMail(MemoryMailProvider):
    """Takes the mail, and Redis is full as it answers."""

    def __init__(self, redis: RedisServer) -> None:
        super().__init__()
        self.redis = redis

    def send_mail(self, *, message: OutgoingMail) -> str:
        ref = super().send_mail(message=message)
        self.redis.fill()
        return ref


class FillingSms(MemorySmsProvider):
    """Takes the text, and Redis is full as it answers."""

    def __init__(self, redis: RedisServer) -> None:
        super().__init__()
        self.redis = redis

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        ref = super().send_sms(to=to, body=body, sender=sender)
        self.redis.fill()
        return ref


def twice(rt: Runtime, fillable: RedisServer, deliver: Callable[[], Outcome]) -> list[str]:
    """Deliver while Redis fills, free it, deliver again as a later message would (a retry, the
    sweep's): the two outcomes."""
    try:
        first = deliver()
    finally:
        fillable.free()
    return [first.status, deliver().status]


def test_a_mail_the_provider_took_as_redis_filled_is_recorded_sent_and_sent_once(
    rt: Runtime, fillable: RedisServer
) -> None:
    rt.store.create(notification_id="n1", client="tester", kind="mail", payload=PAYLOAD)
    provider = FillingMail(fillable)
    outcomes = twice(rt, fillable, lambda: deliver_mail(delivery(rt, mail=provider), "n1"))
    assert outcomes == ["sent", "skipped"]
    assert len(provider.sent) == 1
    record = rt.store.get("n1")
    assert record is not None and (record.status, record.attempts) == ("sent", 1)
    assert rt.store.receipt("memory", "<n1@memory>", "delivered") == "moved"  # its ref indexed


def test_a_captcha_texted_as_redis_filled_is_sent_once_never_expired(
    rt: Runtime, fillable: RedisServer
) -> None:
    notification_id = accept(rt)
    provider = FillingSms(fillable)
    outcomes = twice(
        rt, fillable, lambda: deliver_captcha(delivery(rt, sms=[provider]), notification_id)
    )
    assert outcomes == ["sent", "skipped"]
    assert len(provider.sent) == 1
    record = rt.store.get(notification_id)
    assert record is not None and (record.status, record.error) == ("sent", None)


def test_a_code_mailed_as_redis_filled_is_sent_once(rt: Runtime, fillable: RedisServer) -> None:
    body = MailCaptchaRequest.model_validate({"to": "ada@example.com", "purpose": "login"})
    notification_id = accept_captcha(
        body, channel=MAIL, client="tester", policy=rt.captcha_policy, store=rt.store,
        captchas=rt.captchas, queue=NoQueue(),
    ).id  # fmt: skip
    provider = FillingMail(fillable)
    outcomes = twice(
        rt, fillable, lambda: deliver_mail_captcha(delivery(rt, mail=provider), notification_id)
    )
    assert outcomes == ["sent", "skipped"]
    assert len(provider.sent) == 1
    record = rt.store.get(notification_id)
    assert record is not None and record.status == "sent"


class FillingFirst:
    """The message log's script, run again alone after the record's transaction (Redis had lost
    it: NOSCRIPT): Redis is full first, as when a worker took the message and its provider
    filled Redis meanwhile (seen through a real stack on a slow machine)."""

    def __init__(self, script: Any, redis: RedisServer) -> None:
        self.script, self.redis, self.sha = script, redis, script.sha

    def __call__(self, **kwargs: Any) -> Any:
        self.redis.fill()
        return self.script(**kwargs)


def test_a_mail_stored_as_redis_fills_is_a_202_and_queued_once_never_a_503(
    make_settings: Callable[..., Settings], fillable: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(make_settings(redis_url=fillable.url()))
    store = app.extensions["notifier"].store
    store.__dict__["_script__logged"] = FillingFirst(store._logged, fillable)
    redis.Redis.from_url(fillable.url()).script_flush()
    headers = {**auth(), "Idempotency-Key": "order-7"}
    try:
        answer = app.test_client().post("/v1/mail", json=A_MAIL, headers=headers)
    finally:
        fillable.free()
    # A 503 ("nothing was accepted, retry later") would have the client send it again.
    assert answer.status_code == 202, answer.get_json()
    notification_id = answer.get_json()["id"]
    record = store.get(notification_id)
    assert record is not None and record.status == "queued"
    assert [m["headers"]["argsrepr"] for m in queued_messages(app)] == [repr((notification_id,))]
    lost = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert f"the message log's entry of {notification_id} was not made: Redis refuses writes" \
        f" (OOM): it is full, its used memory over maxmemory" in lost  # fmt: skip
    assert any(m.startswith("the answer to Idempotency-Key was not kept: ") for m in lost)
    # Its key's slot still names it: a retry answers from the record, and queues nothing more.
    again = app.test_client().post("/v1/mail", json=A_MAIL, headers=headers)
    assert (again.status_code, again.get_json()["id"]) == (202, notification_id)
    assert len(queued_messages(app)) == 1

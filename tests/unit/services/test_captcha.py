"""Captcha services with in-memory SMS providers and a real Redis."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask

from config import Settings
from notifier import create_app
from notifier.errors import Limited, PermanentProviderError, TransientProviderError
from notifier.providers.memory import MemorySmsProvider
from notifier.providers.signed_http import RecipientThrottled
from notifier.runtime import Runtime
from notifier.schemas import VerifyRequest
from notifier.services.captcha import (
    EXPIRED,
    EXPIRED_UNRECORDED,
    CaptchaPolicy,
    deliver_captcha,
    scope,
    verify_captcha,
)
from notifier.stores.notifications import payload_key, record_key
from tests.support.delivery import delivery
from tests.support.harness.captcha import PHONE, accept


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A runtime on the test Redis."""
    app: Flask = create_app(make_settings())
    found: Runtime = app.extensions["notifier"]
    return found


def deliver(
    rt: Runtime,
    notification_id: str,
    *providers: MemorySmsProvider,
    policy: CaptchaPolicy | None = None,
) -> Any:
    d = delivery(rt, sms=providers, captcha_policy=policy or rt.captcha_policy)
    return deliver_captcha(d, notification_id)


def verify(rt: Runtime, code: str, purpose: str = "login") -> Any:
    body = VerifyRequest.model_validate({"phone": PHONE, "purpose": purpose, "code": code})
    return verify_captcha(body, client="tester", policy=rt.captcha_policy, captchas=rt.captchas)


def sent_code(provider: MemorySmsProvider) -> str:
    found = re.search(r"\b(\d{6})\b", provider.sent[-1][1])
    assert found, provider.sent
    return found[1]


def test_round_trip_code_is_good_once(rt: Runtime) -> None:
    sms = MemorySmsProvider()
    outcome = deliver(rt, accept(rt), sms)
    assert outcome.status == "sent"
    ((to, text),) = sms.sent
    assert to == PHONE
    assert "Notifier" in text and "5 分钟" in text
    code = sent_code(sms)
    assert verify(rt, code).valid is True
    again = verify(rt, code)
    assert (again.valid, again.reason) == (False, "expired")


def test_a_code_typed_in_full_width_digits_or_with_spaces_is_the_code(rt: Runtime) -> None:
    # A Chinese input method types full-width digits (U+FF10-U+FF19); a pasted code brings
    # spaces. Each was a mismatch, and five of them voided the code.
    sms = MemorySmsProvider()
    deliver(rt, accept(rt), sms)
    code = sent_code(sms)
    typed = " " + "".join(chr(ord(d) + 0xFEE0) for d in code[:3]) + " " + code[3:] + "\t"
    assert verify(rt, typed).valid is True


def test_only_a_digest_of_the_code_is_stored(rt: Runtime) -> None:
    sms = MemorySmsProvider()
    notification_id = accept(rt)
    deliver(rt, notification_id, sms)
    code = sent_code(sms)
    for key in rt.redis.keys("*"):
        kind = rt.redis.type(key)
        dumped = str(rt.redis.hgetall(key) if kind == "hash" else rt.redis.dump(key))
        assert code not in dumped, key


def test_english_text(rt: Runtime) -> None:
    sms = MemorySmsProvider()
    deliver(rt, accept(rt, locale="en"), sms)
    assert re.fullmatch(
        r"Notifier: your verification code is \d{6}\. It expires in 5 minutes\. Do not share it\.",
        sms.sent[0][1],
    )


def test_wrong_codes_lock_the_code(rt: Runtime) -> None:
    sms = MemorySmsProvider()
    deliver(rt, accept(rt), sms)
    code = sent_code(sms)
    wrong = "000000" if code != "000000" else "111111"
    lefts = [verify(rt, wrong).attempts_left for _ in range(5)]
    assert lefts == [4, 3, 2, 1, 0]
    locked = verify(rt, code)
    assert (locked.valid, locked.reason, locked.attempts_left) == (False, "too_many_attempts", 0)


def test_code_is_bound_to_its_purpose(rt: Runtime) -> None:
    sms = MemorySmsProvider()
    deliver(rt, accept(rt), sms)
    assert verify(rt, sent_code(sms), purpose="reset").reason == "expired"


def test_a_new_send_replaces_the_code(rt: Runtime) -> None:
    policy = CaptchaPolicy(resend_interval=0)
    sms = MemorySmsProvider()
    deliver(rt, accept(rt, policy), sms, policy=policy)
    first = sent_code(sms)
    deliver(rt, accept(rt, policy), sms, policy=policy)
    second = sent_code(sms)
    if first != second:
        assert verify(rt, first).reason == "mismatch"
    assert verify(rt, second).valid


def test_a_resend_that_fails_leaves_the_code_the_person_has(rt: Runtime) -> None:
    """A resend refused for good (a provider's per-number limit: Aliyun's is 5 an hour) voided
    the code delivered before it, and the person had none that worked."""
    policy = CaptchaPolicy(resend_interval=0)
    sms = MemorySmsProvider()
    deliver(rt, accept(rt, policy), sms, policy=policy)
    first = sent_code(sms)
    limited = PermanentProviderError("isv.BUSINESS_LIMIT_CONTROL", provider="a")
    refused = MemorySmsProvider([limited, limited])
    for _ in range(2):
        assert deliver(rt, accept(rt, policy), refused, policy=policy).status == "failed"
    assert verify(rt, first).valid
    # Once a resend is taken, its code is the one: the one before it no longer verifies.
    deliver(rt, accept(rt, policy), sms, policy=policy)
    second = sent_code(sms)
    deliver(rt, accept(rt, policy), sms, policy=policy)
    third = sent_code(sms)
    if len({first, second, third}) == 3:
        assert verify(rt, second).reason == "mismatch"
    assert verify(rt, third).valid


def test_a_code_past_a_vendors_per_number_limit_fails_for_good_without_failover(
    rt: Runtime,
) -> None:
    """The limit is the vendor's anti-abuse rule: another provider would only help whoever asks
    for code after code (an SMS notification goes on to the next: test_sms)."""
    limited = RecipientThrottled("isv.BUSINESS_LIMIT_CONTROL", provider="a", code="hour")
    other = MemorySmsProvider()
    outcome = deliver(rt, accept(rt), MemorySmsProvider([limited]), other)
    assert outcome.status == "failed" and other.sent == []


def test_a_code_void_after_its_tries_stays_void_through_a_resend_that_fails(rt: Runtime) -> None:
    policy = CaptchaPolicy(resend_interval=0)
    sms = MemorySmsProvider()
    deliver(rt, accept(rt, policy), sms, policy=policy)
    first = sent_code(sms)
    wrong = "000000" if first != "000000" else "111111"
    for _ in range(policy.max_attempts):
        assert verify(rt, wrong).reason == "mismatch"
    assert verify(rt, first).reason == "too_many_attempts"
    limited = PermanentProviderError("isv.BUSINESS_LIMIT_CONTROL", provider="a")
    deliver(rt, accept(rt, policy), MemorySmsProvider([limited]), policy=policy)
    assert verify(rt, first).valid is False


def test_two_resends_that_cross_leave_the_one_taken_good(rt: Runtime) -> None:
    """Both made before either was sent: the first is taken, the second refused for good."""
    where = scope("tester", "login", PHONE)
    kept = rt.captchas
    taken = kept.new_code(where, length=6, ttl=300, max_attempts=5)
    kept.new_code(where, length=6, ttl=300, max_attempts=5)  # refused for good, later
    kept.delivered(where, taken, until=time.time() + 300)
    assert verify(rt, taken).valid  # (the refused one's would too: it reached no one)
    # Taken in the other order, the newer is the one: the older no longer verifies.
    older = kept.new_code(where, length=6, ttl=300, max_attempts=5)
    newer = kept.new_code(where, length=6, ttl=300, max_attempts=5)
    kept.delivered(where, newer, until=time.time() + 300)
    kept.delivered(where, older, until=time.time() + 300)
    if older != newer:
        assert verify(rt, older).reason == "mismatch"
    assert verify(rt, newer).valid


def test_wrong_tries_made_before_a_send_is_marked_taken_still_count(rt: Runtime) -> None:
    """A person may type before the worker marks the send taken (the full suite's load showed
    it): the mark takes back only the tries a kept code brought, never this code's own."""
    where, kept = scope("tester", "login", PHONE), rt.captchas
    first = kept.new_code(where, length=6, ttl=300, max_attempts=5)
    wrong = "000000" if first != "000000" else "111111"
    assert verify(rt, wrong).attempts_left == 4
    kept.delivered(where, first, until=time.time() + 300)
    assert verify(rt, wrong).attempts_left == 3  # two wrong tries at the first code
    second = kept.new_code(where, length=6, ttl=300, max_attempts=5)  # the first kept, with its 2
    assert verify(rt, wrong if wrong != second else "222222").attempts_left == 2
    kept.delivered(where, second, until=time.time() + 300)  # the first's two go with it
    assert verify(rt, "333333" if second != "333333" else "444444").attempts_left == 3


def test_resend_interval_then_daily_limit(rt: Runtime) -> None:
    accept(rt)
    with pytest.raises(Limited) as caught:
        accept(rt)
    assert 55 <= caught.value.retry_after <= 60
    policy = CaptchaPolicy(resend_interval=0, daily_limit=3)
    accept(rt, policy, purpose="reset")
    accept(rt, policy, purpose="reset")
    with pytest.raises(Limited) as caught:
        accept(rt, policy, purpose="reset")
    assert "daily limit" in caught.value.detail
    assert 86000 < caught.value.retry_after <= 86400


def test_per_address_limit(rt: Runtime) -> None:
    policy = CaptchaPolicy(resend_interval=0, ip_hourly_limit=2)
    for phone in ("+8613800138001", "+8613800138002"):
        accept(rt, policy, phone=phone, client_ip="203.0.113.7")
    with pytest.raises(Limited, match="ip limit"):
        accept(rt, policy, phone="+8613800138003", client_ip="203.0.113.7")
    accept(rt, policy, phone="+8613800138003", client_ip="203.0.113.8")


def test_an_addresss_limit_is_each_clients_under_a_ceiling_for_all(rt: Runtime) -> None:
    """Behind one NAT (one client_ip), one product's users spend that product's hourly limit
    for the address, not another's; every product's together stop at the address's ceiling."""
    policy = CaptchaPolicy(resend_interval=0, ip_hourly_limit=2, ip_hourly_ceiling=3)
    nat = "203.0.113.7"
    for phone in ("+8613800138001", "+8613800138002"):
        accept(rt, policy, client="shop", phone=phone, client_ip=nat)
    with pytest.raises(Limited, match="captcha ip limit reached"):
        accept(rt, policy, client="shop", phone="+8613800138003", client_ip=nat)
    accept(rt, policy, client="bank", phone="+8613800138003", client_ip=nat)
    with pytest.raises(Limited, match="captcha ip hourly ceiling reached") as caught:
        accept(rt, policy, client="tester", phone="+8613800138004", client_ip=nat)
    assert 3590 <= caught.value.retry_after <= 3600
    accept(rt, policy, client="tester", phone="+8613800138004", client_ip="203.0.113.8")


def test_limits_hold_under_a_race(rt: Runtime) -> None:
    results: list[str] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        try:
            accept(rt)
            results.append("accepted")
        except Limited:
            results.append("limited")

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == ["accepted"] + ["limited"] * 7


def test_a_failing_provider_hands_over_to_the_next(rt: Runtime) -> None:
    first = MemorySmsProvider([TransientProviderError("HTTP 503", provider="first")], name="first")
    second = MemorySmsProvider(name="second")
    notification_id = accept(rt)
    assert deliver(rt, notification_id, first, second).status == "sent"
    record = rt.store.get(notification_id)
    assert record is not None and (record.status, record.provider, record.attempts) == (
        "sent",
        "second",
        1,
    )
    assert verify(rt, sent_code(second)).valid


def test_all_failing_retries_before_the_code_expires(rt: Runtime) -> None:
    down = TransientProviderError("HTTP 500", provider="only")
    sms = MemorySmsProvider([down], name="only")
    notification_id = accept(rt)
    outcome = deliver(rt, notification_id, sms)
    assert outcome.status == "retry"
    assert outcome.deadline is not None and 290 < outcome.deadline - time.time() <= 300
    record = rt.store.get(notification_id)
    assert record is not None
    assert (record.status, record.provider, record.error) == ("retrying", "only", "HTTP 500")
    assert deliver(rt, notification_id, sms).status == "sent"


class DiesMidSend(MemorySmsProvider):
    """A provider call during which the worker dies: nothing after it runs, nothing is
    recorded (KeyboardInterrupt: no ``except Exception`` on the way out takes it)."""

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        raise KeyboardInterrupt


def test_a_code_whose_worker_died_mid_send_comes_back_while_it_is_still_good(rt: Runtime) -> None:
    notification_id = accept(rt)
    with pytest.raises(KeyboardInterrupt):
        deliver(rt, notification_id, DiesMidSend())
    # Its claim holds a third of the code's five minutes, not the task time limit's five:
    # a copy of its message (the sweep's, 30 s after the claim ran out) finds it still good.
    assert rt.delivery.code_lease == 100 and rt.delivery.lease == 300
    busy = deliver(rt, notification_id, MemorySmsProvider())
    payload = rt.store.payload(notification_id)
    assert payload is not None
    deadline = payload["deadline"]
    assert busy.status == "busy" and 99 < busy.wait <= 100
    assert deadline - time.time() - busy.wait > 180
    rt.redis.hset(record_key(notification_id), "lease_until", time.time() - 1)  # 100 s on
    sms = MemorySmsProvider()
    assert deliver(rt, notification_id, sms).status == "sent"
    assert verify(rt, sent_code(sms)).valid
    # The worker's watchdog cuts a code's attempt before its claim runs out, at four fifths.
    task = rt.celery.tasks["send_sms_captcha"]
    assert (task.time_limit, task.soft_time_limit) == (100, 80)
    assert rt.celery.tasks["send_mail"].soft_time_limit == 240  # the task time limit's 4/5


def test_when_every_provider_fails_the_error_names_each(rt: Runtime) -> None:
    first = MemorySmsProvider([TransientProviderError("HTTP 503", provider="a")], name="a")
    second = MemorySmsProvider([TransientProviderError("timed out", provider="b")], name="b")
    notification_id = accept(rt)
    assert deliver(rt, notification_id, first, second).status == "retry"
    record = rt.store.get(notification_id)
    assert record is not None
    assert (record.provider, record.error) == ("b", "a: HTTP 503; b: timed out")


def test_permanent_error_fails_without_trying_the_next(rt: Runtime) -> None:
    first = MemorySmsProvider(
        [PermanentProviderError("21211 invalid number", provider="first")], name="first"
    )
    second = MemorySmsProvider(name="second")
    notification_id = accept(rt)
    assert deliver(rt, notification_id, first, second).status == "failed"
    assert second.sent == []
    record = rt.store.get(notification_id)
    assert record is not None and (record.status, record.attempts) == ("failed", 1)


def expired_and_delivered(rt: Runtime, notification_id: str) -> tuple[int, str | None]:
    """Let the code of a captcha expire, then make an attempt: the attempts and the error (and
    nothing sent)."""
    payload = rt.store.payload(notification_id)
    assert payload is not None
    payload["deadline"] = time.time() - 1
    rt.redis.set(payload_key(notification_id), json.dumps(payload))
    sms = MemorySmsProvider()
    assert deliver(rt, notification_id, sms).status == "failed"
    assert sms.sent == []
    record = rt.store.get(notification_id)
    assert record is not None
    return record.attempts, record.error


def test_never_sent_after_the_code_expired(rt: Runtime) -> None:
    notification_id = accept(rt, CaptchaPolicy(ttl=30))
    assert expired_and_delivered(rt, notification_id) == (1, EXPIRED)


def test_an_expired_code_an_unrecorded_attempt_may_have_sent_is_not_said_unsent(
    rt: Runtime,
) -> None:
    """An attempt whose outcome never came (its lease ran out: its worker died, or Redis refused
    the record longer than the worker waited) may have texted the code: when the attempt that
    takes over finds it expired, it must not say it was never sent."""
    notification_id = accept(rt, CaptchaPolicy(ttl=30))
    assert rt.store.claim(notification_id, lease=0, max_attempts=5).status == "sending"
    assert expired_and_delivered(rt, notification_id) == (2, EXPIRED_UNRECORDED)


def test_a_redis_error_on_the_address_limit_gives_the_recipients_back(rt: Runtime) -> None:
    # The request ends 503 ("retry later"): its retry met the resend interval (429), and a daily
    # send was used, for a code never made.
    from redis import RedisError

    from notifier.stores.captchas import Sender

    def broken(**_: Any) -> Any:
        raise RedisError("Connection reset by peer")

    sender = Sender("tester", "login", PHONE, client_ip="203.0.113.7")
    rt.captchas.__dict__["_script__take_ip"] = broken
    with pytest.raises(RedisError):
        rt.captchas.take_send(sender, member="m1", resend_interval=60, daily_limit=5, ip_limit=10)
    del rt.captchas.__dict__["_script__take_ip"]
    taken = rt.captchas.take_send(
        sender, member="m2", resend_interval=60, daily_limit=5, ip_limit=10
    )
    assert taken is None  # not held by the resend interval of the send that never was

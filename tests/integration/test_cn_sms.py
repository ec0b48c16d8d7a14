"""Captchas to mainland numbers through Aliyun and Tencent, through HTTP, Redis and a worker.

The stack routes +86 to aliyun then tencent (``NOTIFIER_SMS_COUNTRY_PROVIDERS``) and every other
country to twilio. The peers speak each vendor's wire format and check its signature.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import aliyun, tencent
from tests.support.redis_server import RedisServer
from tests.support.smtp import SmtpSink
from tests.support.stack import Stack, stack_settings, start_stack
from tests.support.twilio import FakeTwilio

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def cn_stack(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent]]:
    """A stack whose +86 captchas go to Aliyun, then Tencent; the rest to Twilio."""
    ali, ten = aliyun.FakeAliyun().start(), tencent.FakeTencent().start()
    settings = stack_settings(redis_server, smtp, twilio, Path(tmp_path_factory.mktemp("cn")), 4)
    settings.update(
        sms_country_providers=json.dumps({"86": ["aliyun", "tencent"]}),
        aliyun_access_key_id=aliyun.ACCESS_KEY_ID,
        aliyun_access_key_secret=aliyun.ACCESS_KEY_SECRET,
        aliyun_sign_name=aliyun.SIGN_NAME,
        aliyun_template_code=aliyun.TEMPLATE_CODE,
        aliyun_endpoint=ali.base_url,
        tencent_secret_id=tencent.SECRET_ID,
        tencent_secret_key=tencent.SECRET_KEY,
        tencent_sdk_app_id=tencent.SDK_APP_ID,
        tencent_sign_name=tencent.SIGN_NAME,
        tencent_template_id=tencent.TEMPLATE_ID,
        tencent_endpoint=ten.base_url,
        sms_timeout=5,
    )
    stack = start_stack(settings, smtp, twilio)
    yield stack, ali, ten
    stack.stop()
    ali.stop()
    ten.stop()


def mainland() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def captcha(stack: Stack, phone: str) -> str:
    answer = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
    assert answer.status_code == 202, answer.text
    found: str = answer.json()["id"]
    return found


def test_a_mainland_captcha_goes_through_aliyuns_template_and_verifies(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, ali, _ = cn_stack
    phone = mainland()
    status = stack.wait_status(captcha(stack, phone), "sent", "failed")
    assert (status["status"], status["provider"]) == ("sent", "aliyun")
    (sent,) = [s for s in ali.sent if aliyun.e164(s.phone) == phone]
    assert (sent.sign_name, sent.template) == (aliyun.SIGN_NAME, aliyun.TEMPLATE_CODE)
    code = sent.params["code"]
    verdict = stack.post(
        "/v1/sms/captcha/verify", {"phone": phone, "purpose": "login", "code": code}
    )
    assert verdict.json() == {"valid": True}


def test_aliyun_throttled_hands_over_to_tencent(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, ali, ten = cn_stack
    phone = mainland()
    ali.plan(phone, aliyun.THROTTLED)
    status = stack.wait_status(captcha(stack, phone), "sent", "failed")
    assert (status["status"], status["provider"], status["attempts"]) == ("sent", "tencent", 1)
    (sent,) = [s for s in ten.sent if s.phone == phone]
    assert (sent.sign_name, sent.template, sent.sdk_app_id) == (
        tencent.SIGN_NAME, tencent.TEMPLATE_ID, tencent.SDK_APP_ID,
    )  # fmt: skip
    assert [s for s in ali.sent if aliyun.e164(s.phone) == phone] == []


def test_an_invalid_number_fails_at_once_without_failover(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, ali, ten = cn_stack
    phone = mainland()
    ali.plan(phone, aliyun.INVALID_NUMBER)
    status = stack.wait_status(captcha(stack, phone), "sent", "failed")
    assert (status["status"], status["provider"], status["attempts"]) == ("failed", "aliyun", 1)
    assert "isv.MOBILE_NUMBER_ILLEGAL" in (status["error"] or "")
    assert [s for s in ten.sent if s.phone == phone] == []


def test_other_countries_keep_the_default_order(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, ali, ten = cn_stack
    phone = f"+1202555{uuid.uuid4().int % 10**4:04d}"
    status = stack.wait_status(captcha(stack, phone), "sent", "failed")
    assert (status["status"], status["provider"]) == ("sent", "twilio")
    assert len(stack.twilio.texts_to(phone)) == 1
    assert not [s for s in ali.sent if aliyun.e164(s.phone) == phone]
    assert not [s for s in ten.sent if s.phone == phone]

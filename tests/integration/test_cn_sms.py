"""Captchas to mainland numbers through Aliyun and Tencent, through HTTP, Redis and a worker.

The stack routes +86 to aliyun then tencent (``NOTIFIER_SMS_COUNTRY_PROVIDERS``) and every other
country to twilio. The peers speak each vendor's wire format and check its signature; their
delivery receipts are posted as each vendor posts them, with the token in the URL.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import pytest
import requests

from tests.support.harness.sms import ALIYUN_TOKEN, TENCENT_TOKEN, Texting
from tests.support.harness.stack import Stack, verify
from tests.support.harness.wait import wait_for
from tests.support.peers import aliyun, tencent

pytestmark = pytest.mark.integration


@pytest.fixture
def cn_stack(texting: Texting) -> tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent]:
    """The session's stack that texts +86 through Aliyun, then Tencent, the rest through Twilio
    (``texting``: test_sms_notifications.py's, whose public URL, named SMS and further clients
    these captchas of the tests' client leave aside)."""
    return texting.stack, texting.ali, texting.ten


def mainland() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def captcha(stack: Stack, phone: str) -> str:
    answer = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"})
    assert answer.status_code == 202, answer.text
    found: str = answer.json()["id"]
    return found


def through_tencent(
    stack: Stack, ali: aliyun.FakeAliyun, ten: tencent.FakeTencent
) -> tuple[str, dict[str, Any], tencent.Sent]:
    """A captcha that Aliyun throttles, so Tencent sends it: its id, its record, what Tencent got."""
    phone = mainland()
    ali.plan(phone, aliyun.THROTTLED)
    notification_id = captcha(stack, phone)
    record = stack.wait_status(notification_id, "sent", "failed")
    (sent,) = [s for s in ten.sent if s.phone == phone]
    return notification_id, record, sent


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
    _, ali, _ = cn_stack
    _, status, sent = through_tencent(*cn_stack)
    assert (status["status"], status["provider"], status["attempts"]) == ("sent", "tencent", 1)
    assert (sent.sign_name, sent.template, sent.sdk_app_id) == (
        tencent.SIGN_NAME, tencent.TEMPLATE_ID, tencent.SDK_APP_ID,
    )  # fmt: skip
    assert [s for s in ali.sent if aliyun.e164(s.phone) == sent.phone] == []


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


def test_other_countries_fail_over_down_the_default_order(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    """Twilio down for a US number: the next of NOTIFIER_SMS_PROVIDERS (the console) sends the
    code, which verifies."""
    stack, _, _ = cn_stack
    phone = f"+1202555{uuid.uuid4().int % 10**4:04d}"
    stack.twilio.plan(phone, (503, 20503))
    status = stack.wait_status(captcha(stack, phone), "sent", "failed")
    assert (status["status"], status["provider"], status["attempts"]) == ("sent", "console", 1)
    # Twilio was asked (its planned 503 taken) and sent nothing.
    assert stack.twilio.planned(phone) is None and stack.twilio.texts_to(phone) == []
    printed = wait_for(
        lambda: re.search(rf"SMS to {re.escape(phone)}: .*?(\d{{6}})", stack.worker.output()),
        what="the console provider's text",
    )
    assert verify(stack, phone, printed[1]) == {"valid": True}


def push(stack: Stack, provider: str, token: str, reports: Any) -> requests.Response:
    """POST a receipt push to the URL set in ``provider``'s console, with ``token`` in it."""
    return requests.post(
        f"{stack.base}/v1/receipts/{provider}", params={"token": token}, json=reports, timeout=10
    )


def test_an_aliyun_receipt_moves_the_captcha_to_delivered(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, ali, _ = cn_stack
    phone = mainland()
    notification_id = captcha(stack, phone)
    record = stack.wait_status(notification_id, "sent", "failed")
    (sent,) = [s for s in ali.sent if aliyun.e164(s.phone) == phone]
    assert (record["status"], record["provider"], record["provider_ref"]) == (
        "sent", "aliyun", sent.biz_id,
    )  # fmt: skip
    check = requests.get(
        f"{stack.base}/v1/receipts/aliyun", params={"token": ALIYUN_TOKEN}, timeout=10
    )
    assert (check.status_code, check.json()) == (200, {"code": 0, "msg": "成功"})
    refused = push(stack, "aliyun", TENCENT_TOKEN, ali.receipt(sent.biz_id))
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert stack.status(notification_id)["status"] == "sent"
    answer = push(stack, "aliyun", ALIYUN_TOKEN, ali.receipt(sent.biz_id))
    assert (answer.status_code, answer.json()) == (200, {"code": 0, "msg": "接收成功"})
    stack.wait_status(notification_id, "delivered")
    # Aliyun pushes again when it is unsure we heard: nothing moves back.
    again = ali.receipt(sent.biz_id, success=False, err_code="MK:0001")
    assert push(stack, "aliyun", ALIYUN_TOKEN, again).status_code == 200
    assert stack.status(notification_id)["status"] == "delivered"
    metrics = stack.get("/metrics").text
    assert 'notifier_receipts_total{provider="aliyun",status="delivered"} ' in metrics


def test_a_tencent_receipt_of_a_failure_ends_undelivered_with_its_code(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, _, ten = cn_stack
    notification_id, record, sent = through_tencent(*cn_stack)
    assert (record["provider"], record["provider_ref"]) == ("tencent", sent.serial_no)
    failed = ten.receipt(sent.serial_no, success=False, errmsg="002")
    # Aliyun's token is not Tencent's, and no token at all is refused too.
    assert push(stack, "tencent", ALIYUN_TOKEN, failed).status_code == 403
    assert push(stack, "tencent", "", failed).status_code == 403
    assert stack.status(notification_id)["status"] == "sent"
    answer = push(stack, "tencent", TENCENT_TOKEN, failed)
    assert (answer.status_code, answer.json()) == (200, {"result": 0, "errmsg": "OK"})
    record = stack.wait_status(notification_id, "undelivered")
    assert record["error"] == "Tencent 002"
    assert sent.phone.removeprefix("+86") not in json.dumps(record)


def test_a_receipt_push_with_an_unknown_id_is_taken(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent],
) -> None:
    stack, _, _ = cn_stack
    unknown = [{"sid": "2019:404", "report_status": "SUCCESS", "errmsg": "DELIVRD"}]
    assert push(stack, "tencent", TENCENT_TOKEN, unknown).json() == {"result": 0, "errmsg": "OK"}
    assert push(stack, "tencent", TENCENT_TOKEN, {"sid": "2019:404"}).status_code == 400


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_a_push_without_the_token_is_403_whatever_its_body(
    cn_stack: tuple[Stack, aliyun.FakeAliyun, tencent.FakeTencent], provider: str
) -> None:
    """Through gunicorn: the token is checked before the body is read, so a stranger's body
    that is not JSON, or past the size limit, still gets 403 and not 400 or 413."""
    stack, _, _ = cn_stack
    for body in (b"[{]", b"[" + b"{}," * 400_000 + b"{}]"):
        for params in ({}, {"token": "wrong"}):
            answer = requests.post(
                f"{stack.base}/v1/receipts/{provider}", params=params, data=body,
                headers={"Content-Type": "application/json"}, timeout=10,
            )  # fmt: skip
            assert answer.status_code == 403, answer.text
            assert answer.headers["Content-Type"] == "application/problem+json"

"""SMS captchas from HTTP through Redis and a real worker to Twilio's REST format (real SDK)."""

from __future__ import annotations

import re
import threading
from typing import Any

import pytest
import requests

from tests.support.harness.stack import (
    Stack,
    code_sent_to,
    new_phone,
    verify,
)
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


def send(stack: Stack, phone: str, purpose: str = "login", **extra: Any) -> requests.Response:
    return stack.post("/v1/sms/captcha", {"phone": phone, "purpose": purpose, **extra})


def test_round_trip_send_read_verify(stack: Stack) -> None:
    phone = new_phone()
    response = send(stack, phone, locale="en")
    assert response.status_code == 202
    accepted = response.json()
    code = code_sent_to(stack.twilio, phone)
    assert stack.twilio.texts_to(phone)[0].startswith("Notifier: your verification code is")
    status = stack.wait_status(accepted["id"], "sent")
    assert (status["provider"], status["attempts"]) == ("twilio", 1)
    assert verify(stack, phone, code) == {"valid": True}
    assert verify(stack, phone, code)["valid"] is False


@pytest.mark.parametrize(
    ("phone", "reason"), [("+44 7400 123456", "country"), ("+1 900 209 0123", "blocked_prefix")]
)
def test_the_fraud_guard_refuses_a_number_before_any_provider_sees_it(
    stack: Stack, phone: str, reason: str
) -> None:
    refused = send(stack, phone)
    assert refused.status_code == 422
    assert refused.headers["Content-Type"] == "application/problem+json"
    assert [e["loc"] for e in refused.json()["errors"]] == [["body", "phone"]]
    counted = re.search(
        rf'notifier_sms_refused_total{{reason="{reason}"}} (\S+)', stack.get("/metrics").text
    )
    assert counted and float(counted[1]) >= 1
    # A number it allows, sent after it, reaches the provider; the refused one never does.
    allowed = new_phone()
    assert send(stack, allowed).status_code == 202
    code_sent_to(stack.twilio, allowed)
    assert stack.twilio.texts_to(phone.replace(" ", "")) == []


def test_metrics_count_codes_sent_and_verified_per_purpose(stack: Stack) -> None:
    def counted(series: str) -> float:
        labels = '{channel="sms",purpose="ratio-check"}'
        found = re.search(rf"{series}_total{re.escape(labels)} (\S+)", stack.get("/metrics").text)
        return float(found[1]) if found else 0.0

    phones = [new_phone(), new_phone()]
    for phone in phones:
        assert send(stack, phone, purpose="ratio-check").status_code == 202
    codes = [code_sent_to(stack.twilio, phone) for phone in phones]
    assert verify(stack, phones[0], codes[0], purpose="ratio-check") == {"valid": True}
    wait_for(lambda: counted("notifier_captchas_sent") == 2, timeout=10, what="both counted")
    # One of two verified: the ratio an operator watches (a wrong code is not counted).
    verify(stack, phones[1], "000000" if codes[1] != "000000" else "111111", purpose="ratio-check")
    assert counted("notifier_captchas_verified") == 1


def test_wrong_codes_lock_the_code(stack: Stack) -> None:
    phone = new_phone()
    send(stack, phone)
    code = code_sent_to(stack.twilio, phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    answers = [verify(stack, phone, wrong) for _ in range(5)]
    assert [a["attempts_left"] for a in answers] == [4, 3, 2, 1, 0]
    assert all(a["reason"] == "mismatch" for a in answers)
    assert verify(stack, phone, code) == {
        "valid": False,
        "reason": "too_many_attempts",
        "attempts_left": 0,
    }


def test_resend_inside_the_interval_is_429(stack: Stack) -> None:
    phone = new_phone()
    assert send(stack, phone).status_code == 202
    again = send(stack, phone)
    assert again.status_code == 429
    assert again.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(again.headers["Retry-After"]) <= 60


def test_daily_cap_per_phone(stack: Stack) -> None:
    phone = new_phone()
    for n in range(10):  # the default cap; each purpose has its own resend interval
        assert send(stack, phone, purpose=f"p{n}").status_code == 202
    capped = send(stack, phone, purpose="p10")
    assert capped.status_code == 429
    assert "daily limit" in capped.json()["detail"]
    assert int(capped.headers["Retry-After"]) > 86000


def test_500_then_503_then_success_is_sent_on_the_third_attempt(stack: Stack) -> None:
    phone = new_phone()
    stack.twilio.plan(phone, (500, 20500), (503, 20503))
    notification_id = send(stack, phone).json()["id"]
    status = stack.wait_status(notification_id, "sent")
    assert (status["attempts"], status["provider"]) == (3, "twilio")
    code = code_sent_to(stack.twilio, phone)
    assert verify(stack, phone, code) == {"valid": True}


def test_invalid_number_fails_after_one_attempt(stack: Stack) -> None:
    phone = new_phone()
    stack.twilio.plan(phone, (400, 21211))
    notification_id = send(stack, phone).json()["id"]
    status = stack.wait_status(notification_id, "failed")
    assert status["attempts"] == 1
    assert "21211" in status["error"]


def test_two_concurrent_sends_one_202_one_429(stack: Stack) -> None:
    phone = new_phone()
    barrier = threading.Barrier(2)
    codes: list[int] = []

    def one() -> None:
        barrier.wait()
        codes.append(send(stack, phone).status_code)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202, 429]

"""Codes by mail, and fair per-client limits, from HTTP through Redis and a real worker to the
SMTP server (aiosmtpd, as strict about the wire as a hardened relay) and Twilio's REST format."""

from __future__ import annotations

import email
import email.policy
import re
import uuid
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from typing import Any

import pytest
import requests

from tests.support.harness.captcha import gmail_spellings
from tests.support.harness.processes import start_worker
from tests.support.harness.stack import Stack, address, new_phone, send
from tests.support.harness.wait import wait_for
from tests.support.peers.smtp import wire_faults

pytestmark = pytest.mark.integration


def ask(
    stack: Stack, to: str, purpose: str = "login", who: str = "tester", **extra: Any
) -> requests.Response:
    return stack.post("/v1/mail/captcha", {"to": to, "purpose": purpose, **extra}, who=who)


def check(
    stack: Stack, to: str, code: str, purpose: str = "login", who: str = "tester"
) -> dict[str, Any]:
    body = {"to": to, "purpose": purpose, "code": code}
    answer = stack.post("/v1/mail/captcha/verify", body, who=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def mailed(stack: Stack, notification_id: str) -> tuple[bytes, EmailMessage, str]:
    """The DATA of the code's mail as it arrived, the mail parsed, and the code in it."""
    (raw,) = wait_for(lambda: stack.smtp.raw(notification_id), what="the code's mail")
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"\b(\d{6})\b", text.get_content())
    assert found, text.get_content()
    return raw, message, found[1]


def test_the_code_arrives_in_a_wire_clean_mail_and_verifies_once(stack: Stack) -> None:
    to = address("login")
    answer = ask(stack, to, locale="zh-CN")
    assert answer.status_code == 202, answer.text
    notification_id = answer.json()["id"]
    raw, message, code = mailed(stack, notification_id)
    assert wire_faults(raw) == []
    assert raw.isascii()  # Chinese in the subject and body, but encoded: any relay takes it
    assert message["Subject"] == "您的Notifier验证码"
    assert message["Auto-Submitted"] == "auto-generated"
    assert [a.addr_spec for a in message["To"].addresses] == [to]
    html = message.get_body(("html",))
    assert html is not None and code in html.get_content()
    status = stack.wait_status(notification_id, "sent")
    assert (status["kind"], status["provider"]) == ("mail", "smtp")
    assert check(stack, to, code) == {"valid": True}
    assert check(stack, to, code) == {"valid": False, "reason": "expired", "attempts_left": 0}


def test_wrong_codes_void_it_and_a_resend_inside_the_interval_is_429(stack: Stack) -> None:
    to = address("tries")
    notification_id = ask(stack, to).json()["id"]
    again = ask(stack, to)
    assert again.status_code == 429
    assert again.headers["Content-Type"] == "application/problem+json"
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    *_, code = mailed(stack, notification_id)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    assert [check(stack, to, wrong)["attempts_left"] for _ in range(5)] == [4, 3, 2, 1, 0]
    assert check(stack, to, code) == {
        "valid": False,
        "reason": "too_many_attempts",
        "attempts_left": 0,
    }


def test_a_domain_in_another_case_verifies_the_same_address(stack: Stack) -> None:
    local = f"Ada-{uuid.uuid4().hex[:8]}"
    notification_id = ask(stack, f"{local}@Example.COM").json()["id"]
    _, message, code = mailed(stack, notification_id)
    assert [a.addr_spec for a in message["To"].addresses] == [f"{local}@example.com"]
    assert check(stack, f"{local}@eXaMpLe.com", code) == {"valid": True}


# The drain's own wait (120 s) fails with its message before pytest's timeout would.
@pytest.mark.timeout(180)
@pytest.mark.soak
def test_a_mail_captcha_behind_1000_queued_mails_arrives_before_they_drain(stack: Stack) -> None:
    stack.worker.stop()  # the backlog builds up while no worker runs, as at a busy moment
    stack.smtp.handler.rcpt_delay = 0.02  # a relay a little way off
    try:
        with ThreadPoolExecutor(8) as pool:
            mails = list(pool.map(lambda i: send(stack, to=[address(f"drain{i}")]), range(1000)))
        to = address("urgent")
        captcha = ask(stack, to).json()["id"]
        stack.worker = start_worker(stack.env)
        *_, code = mailed(stack, captcha)
        arrived = stack.smtp.handler.arrivals[captcha]
        wait_for(lambda: all(i in stack.smtp.handler.arrivals for i in mails), timeout=120)
    finally:
        stack.smtp.handler.rcpt_delay = 0.0
        stack.ensure_worker()  # the session's stack: the modules after need it
    before = sum(stack.smtp.handler.arrivals[i] < arrived for i in mails)
    # Behind them in one queue it would come last; on the captcha lane it is taken first.
    assert before < 100, f"{before} of 1000 mails reached the relay before the login code"
    assert check(stack, to, code) == {"valid": True}


def test_one_clients_use_of_a_phone_leaves_anothers_under_a_ceiling_for_all(
    stack: Stack,
) -> None:
    """The stack's limits: 10 a phone a day for each client, 15 for all clients together."""
    phone = new_phone()

    def text(who: str, n: int) -> requests.Response:
        body = {"phone": phone, "purpose": f"p{n}"}  # each purpose has its own resend interval
        return stack.post("/v1/sms/captcha", body, who=who)

    for n in range(10):
        assert text("tester", n).status_code == 202
    spent = text("tester", 10)
    assert (spent.status_code, "daily limit" in spent.json()["detail"]) == (429, True)
    # Another client still reaches the phone: its texts arrive...
    for n in range(5):
        assert text("smser", n).status_code == 202
    wait_for(lambda: len(stack.twilio.texts_to(phone)) == 15, what="15 texts to the phone")
    # ...until the phone's ceiling for every client together.
    ceiling = text("smser", 5)
    assert (ceiling.status_code, "phone daily ceiling" in ceiling.json()["detail"]) == (429, True)
    assert len(stack.twilio.texts_to(phone)) == 15


# Four products behind one Notifier, each far below its own daily limit for a recipient (10).
PRODUCTS = {
    "sms": ["tester", "smser", "shop", "bank"],
    "mail": ["tester", "mailer", "shop", "bank"],
}


@pytest.mark.parametrize("channel", ["sms", "mail"])
def test_the_ceiling_holds_across_many_clients(stack: Stack, channel: str) -> None:
    """The stack's ceiling is 15 codes a day to one phone or address for all clients together:
    no client is near its own limit, yet the sixteenth code goes to no one."""
    if channel == "sms":
        recipient, route, field, noun = new_phone(), "/v1/sms/captcha", "phone", "phone"
    else:
        recipient, route, field, noun = address("bombed"), "/v1/mail/captcha", "to", "address"
    clients = PRODUCTS[channel]

    def code(who: str, n: int) -> requests.Response:
        # Each purpose has its own resend interval: only the daily counts stand in the way.
        return stack.post(route, {field: recipient, "purpose": f"p{n}"}, who=who)

    accepted = []
    for n in range(15):
        answer = code(clients[n % len(clients)], n)
        assert answer.status_code == 202, answer.text
        accepted.append(answer.json()["id"])
    for who in clients:
        refused = code(who, 15)
        assert refused.status_code == 429, refused.text
        assert f"captcha {noun} daily ceiling reached" in refused.json()["detail"]
    if channel == "sms":
        wait_for(lambda: len(stack.twilio.texts_to(recipient)) == 15, what="15 texts")
    else:
        wait_for(lambda: all(stack.smtp.raw(i) for i in accepted), what="15 code mails")


def test_the_spellings_of_one_gmail_mailbox_share_one_allowance(stack: Stack) -> None:
    """45 spellings of one Gmail mailbox (dots anywhere, googlemail.com) are one address to the
    stack's limits (10 a client, 15 for all): 15 codes arrive, each at the spelling asked."""
    spellings = gmail_spellings(f"ada{uuid.uuid4().hex[:8]}", 45)

    def code(who: str, n: int) -> requests.Response:
        # Each purpose has its own resend interval: only the daily counts stand in the way.
        return stack.post("/v1/mail/captcha", {"to": spellings[n], "purpose": f"p{n}"}, who=who)

    answers = [(n, code("tester", n)) for n in range(15)]
    answers += [(n, code(("mailer", "shop", "bank")[n % 3], n)) for n in range(15, 45)]
    accepted = {n: a.json()["id"] for n, a in answers if a.status_code == 202}
    assert len(accepted) == 15, [a.status_code for _, a in answers]
    assert sorted(accepted)[:10] == list(range(10))  # the tester's daily limit, then the others'
    refused = [a.json()["detail"] for _, a in answers if a.status_code != 202]
    assert all(why.startswith("captcha ") and "reached" in why for why in refused), refused
    for n, notification_id in accepted.items():
        _, message, _ = mailed(stack, notification_id)
        assert [a.addr_spec for a in message["To"].addresses] == [spellings[n]]


def test_codes_by_mail_are_counted_sent_and_verified(stack: Stack) -> None:
    """The verify ratio by mail, as /metrics gives it: two codes sent, one verified."""

    def counted(series: str) -> float:
        labels = '{channel="mail",purpose="mail-ratio"}'
        found = re.search(rf"{series}_total{re.escape(labels)} (\S+)", stack.get("/metrics").text)
        return float(found[1]) if found else 0.0

    # A client of its own: a purpose is labelled among the first 32 of its client, and the
    # schemathesis run posts codes with made-up purposes as "tester" on this stack.
    who, to = "mailer", [address("ratio"), address("ratio")]
    codes = [
        mailed(stack, ask(stack, a, purpose="mail-ratio", who=who).json()["id"])[2] for a in to
    ]
    wait_for(lambda: counted("notifier_captchas_sent") == 2, timeout=10, what="both counted")
    assert check(stack, to[0], codes[0], purpose="mail-ratio", who=who) == {"valid": True}
    wrong = f"{(int(codes[1]) + 1) % 10**6:06d}"
    assert check(stack, to[1], wrong, purpose="mail-ratio", who=who)["valid"] is False
    assert counted("notifier_captchas_verified") == 1

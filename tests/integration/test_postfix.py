"""Mail through Postfix, the MTA users relay through, with bare-LF rejection on.

web + worker send to a private Postfix (``tests/support/peers/postfix.py``), which relays what it
accepts to an aiosmtpd server of this module's: a mail that arrives there was taken by Postfix.
Its bounce domain runs docs/deliverability.md's lines as written, piping to the stack through a
gate (``tests/support/peers/gate.py``) that can stand for a Notifier that cannot take a DSN.
"""

from __future__ import annotations

import base64
import email
import email.policy
import json
import re
import smtplib
import uuid
from collections.abc import Iterator
from email.message import EmailMessage, MIMEPart
from pathlib import Path

import dkim
import pytest
import requests

from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.clients import api_keys_with, callback_client
from tests.support.harness.dkim_keys import KeyPair, key_pair
from tests.support.harness.dsn import dsn
from tests.support.harness.mail import NEWSLETTER_HTML, NEWSLETTER_TEXT
from tests.support.harness.stack import Caller, Stack, stack_settings, start_stack
from tests.support.harness.wait import wait_for
from tests.support.peers.dns_server import DnsServer
from tests.support.peers.gate import Gate
from tests.support.peers.postfix import PostfixServer
from tests.support.peers.receiver import CallbackReceiver
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = [pytest.mark.integration, pytest.mark.postfix]
BOUNCE_TOKEN = "the-bounce-route-token-0123"
HOOKED = "ntf_test-key-of-a-client-whose-mail-bounces"
SECRET = "whsec_" + base64.b64encode(b"the hooked client's callback secret").decode()


@pytest.fixture(scope="module")
def postfix() -> Iterator[tuple[PostfixServer, SmtpSink]]:
    """A private Postfix relaying to a recording SMTP server of its own."""
    behind = SmtpSink()
    behind.start()
    server = PostfixServer(relay_port=behind.port)
    try:
        server.start()
        yield server, behind
    finally:
        server.stop()
        behind.stop()


@pytest.fixture(scope="module")
def dkim_pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """The key example.com signs with, selector s1."""
    return key_pair(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def receiver() -> Iterator[CallbackReceiver]:
    """The status callbacks of the "hooked" client."""
    running = CallbackReceiver()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def notifier_stack(
    postfix: tuple[PostfixServer, SmtpSink],
    redis_server: RedisServer,
    twilio: FakeTwilio,
    dkim_pair: KeyPair,
    receiver: CallbackReceiver,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Web, worker and beat whose mail server is the private Postfix; mail from example.com
    is DKIM-signed, and bounces come back to bounces.notifier.test."""
    server, behind = postfix
    settings = stack_settings(
        redis_server, behind, twilio, Path(tmp_path_factory.mktemp("postfix")), db=4
    )
    settings["mail_port"] = server.port
    settings["bounce_domain"] = "bounces.notifier.test"
    settings["bounce_token"] = BOUNCE_TOKEN
    settings["api_keys"] = api_keys_with(callback_client("hooked", HOOKED, receiver.url, SECRET))
    settings["dkim_keys"] = json.dumps(
        {"example.com": {"selector": "s1", "private_key_file": str(dkim_pair.pem_file)}}
    )
    stack = start_stack(settings, behind, twilio)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def gate(notifier_stack: Stack) -> Iterator[Gate]:
    """Where the bounce pipe's curl posts: passed on to the stack, unless a test stands for a
    Notifier that cannot take it."""
    running = Gate(notifier_stack.base).start()
    yield running
    running.stop()


@pytest.fixture(scope="module")
def postfix_stack(
    postfix: tuple[PostfixServer, SmtpSink], notifier_stack: Stack, gate: Gate
) -> Stack:
    """The stack, with the bounce domain piped to it (through the gate) as the docs say."""
    server, _ = postfix
    server.pipe(*documented_pipe(gate.url))
    return notifier_stack


def documented_pipe(base: str) -> tuple[str, str]:
    """The main.cf and master.cf lines docs/deliverability.md gives for the bounce domain,
    for bounces.notifier.test and this stack."""
    page = (Path(__file__).parents[2] / "docs" / "deliverability.md").read_text()
    block = page.split("With Postfix, for `bounces.example.com`:", 1)[1].split("```")[1]
    ours = (
        block.replace("bounces.example.com", "bounces.notifier.test")
        .replace("https://notifier.example", base)
        .replace("<NOTIFIER_BOUNCE_TOKEN>", BOUNCE_TOKEN)
    )
    main_cf, master_cf = ours.split("# master.cf")
    return main_cf.replace("# main.cf", ""), master_cf


def arrived(stack: Stack, notification_id: str) -> EmailMessage:
    """The one copy the server behind Postfix received (Postfix relays after it queued)."""
    stack.wait_status(notification_id, "sent")
    ((_, message),) = wait_for(
        lambda: stack.smtp.received(notification_id), what=f"{notification_id} behind Postfix"
    )
    return message


def lines(content: MIMEPart | str | None) -> list[str]:
    """The lines of a text or a text part: SMTP may end the last line, and CRLF is a line end."""
    if isinstance(content, MIMEPart):
        content = content.get_content()
    assert isinstance(content, str)
    return content.splitlines()


@pytest.mark.parametrize(
    ("subject", "text", "html", "crowd"),
    [
        ("Newsletter — Grüße ✓", NEWSLETTER_TEXT, NEWSLETTER_HTML, 50),
        ("登录提醒", "你好，世界。" * 400 + "\n" + "naïve café " * 300, None, 1),
        ("Plain", "a" * 700, None, 1),
    ],
    ids=["newsletter-50-recipients", "non-ascii", "700-characters"],
)
def test_realistic_mail_is_accepted_by_postfix_and_arrives_intact_and_signed(
    postfix_stack: Stack, dkim_pair: KeyPair, subject: str, text: str, html: str | None, crowd: int
) -> None:
    tag = uuid.uuid4().hex[:8]
    to = [f"reader{i:02d}-{tag}@example.com" for i in range(crowd)]
    body = {"to": to, "subject": subject, "text": text, **({"html": html} if html else {})}
    response = postfix_stack.post("/v1/mail", body)
    assert response.status_code == 202, response.text
    notification_id = response.json()["id"]
    message = arrived(postfix_stack, notification_id)
    assert message["Subject"] == subject
    assert [a.addr_spec for a in message["To"].addresses] == to
    assert lines(message.get_body(("plain",))) == lines(text)
    if html is not None:
        assert lines(message.get_body(("html",))) == lines(html)
    ((envelope, _),) = postfix_stack.smtp.received(notification_id)
    assert sorted(envelope.rcpt_tos) == sorted(to)
    # Signed before Postfix, verified after it (Postfix added its Received line on top).
    (raw,) = postfix_stack.smtp.raw(notification_id)
    assert raw.startswith(b"Received: ") and b"\r\nDKIM-Signature: " in raw
    dns_server = DnsServer().start()
    dns_server.records["s1._domainkey.example.com"] = dkim_pair.record
    try:
        with dns_server.as_resolver():
            assert dkim.verify(raw)
    finally:
        dns_server.stop()


def test_postfix_really_refuses_bare_lf(postfix: tuple[PostfixServer, SmtpSink]) -> None:
    server, _ = postfix
    bare = b"From: a@example.com\nTo: b@example.com\nSubject: bare\n\nbare LF lines\n"
    with smtplib.SMTP("127.0.0.1", server.port, timeout=10) as client:
        with pytest.raises(smtplib.SMTPDataError) as refused:
            client.sendmail("a@example.com", ["b@example.com"], bare)
        assert refused.value.smtp_code == 550
        assert b"bare <LF>" in refused.value.smtp_error
        client.rset()
        # The same message in CRLF lines is taken: it was the line ends, nothing else.
        assert (
            client.sendmail("a@example.com", ["b@example.com"], bare.replace(b"\n", b"\r\n")) == {}
        )


def test_a_batchs_mails_rendered_at_send_time_pass_postfix(postfix_stack: Stack) -> None:
    recipients = rows(50, "pfb")
    for i, row in enumerate(recipients):
        row["data"]["name"] = f"Zoë 王 {i}"  # non-ASCII in the subject and the body
        row["data"]["login_url"] += "?t=" + "x" * 1200  # a line longer than SMTP allows
    accepted = post_batch(postfix_stack.base, recipients)
    done = wait_batch(postfix_stack.base, accepted["id"], "done")
    assert done["counts"] == {"sent": 50}
    by_rcpt = wait_for(
        lambda: all(r["to"] in (b := postfix_stack.smtp.by_recipient()) for r in recipients) and b,
        what="every row behind Postfix",
    )
    for i in (0, 49):
        (message,) = by_rcpt[recipients[i]["to"]]
        assert message["Subject"] == f"Welcome to Acme, Zoë 王 {i}"
        text = message.get_body(("plain",))
        assert text is not None and recipients[i]["data"]["login_url"] in text.get_content()


def test_a_code_by_mail_passes_postfix_and_verifies(postfix_stack: Stack) -> None:
    to = f"login-{uuid.uuid4().hex[:8]}@example.com"
    body = {"to": to, "purpose": "login", "locale": "zh-CN"}
    response = postfix_stack.post("/v1/mail/captcha", body)
    assert response.status_code == 202, response.text
    message = arrived(postfix_stack, response.json()["id"])
    assert message["Subject"] == "您的Notifier验证码"
    text = message.get_body(("plain",))
    assert text is not None
    code = re.search(r"\b(\d{6})\b", text.get_content())
    assert code, text.get_content()
    check = {"to": to, "purpose": "login", "code": code[1]}
    verified = postfix_stack.post("/v1/mail/captcha/verify", check)
    assert verified.json() == {"valid": True}


def piped(stack: Stack, raw: bytes) -> str:
    """Pipe a message to the route as the bounce domain's MTA does (a copy or a forgery)."""
    answer = requests.post(f"{stack.base}/v1/bounces?token={BOUNCE_TOKEN}", data=raw, timeout=10)
    assert answer.status_code == 200, answer.text
    outcome: str = answer.json()["outcome"]
    return outcome


def bounce_for(server: PostfixServer, notification_id: str) -> bytes:
    """The DSN Postfix sent back to the notification's own envelope sender and piped to
    Notifier through the documented transport (the copy its curl was given)."""
    folder = server.piped
    assert folder is not None
    plain = notification_id.replace("-", "").encode()

    def found() -> bytes | None:
        return next((raw for f in folder.iterdir() if plain in (raw := f.read_bytes())), None)

    return wait_for(found, what=f"Postfix's DSN for {notification_id}, piped")


def parsed(raw: bytes) -> EmailMessage:
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def test_a_mail_postfix_cannot_deliver_bounces_back_and_is_undelivered(
    postfix_stack: Stack, postfix: tuple[PostfixServer, SmtpSink], receiver: CallbackReceiver
) -> None:
    server, _ = postfix
    caller = Caller(postfix_stack, HOOKED)
    gone = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    # The next hop refuses the recipient after Postfix took the mail: Postfix bounces it.
    postfix_stack.smtp.plan(
        gone, "550 5.1.1 <" + gone + ">: Recipient address rejected: User unknown"
    )
    notification_id = caller.post("/v1/mail", {"to": [gone], "subject": "Hi", "text": "Hello"})
    # Postfix's DSN goes to the bounce domain, which pipes it to Notifier as the docs say.
    status = caller.wait_status(notification_id, "undelivered")
    assert status["error"].startswith("bounced: 5.1.1 550 5.1.1 <"), status["error"]
    assert "Recipient address rejected: User unknown" in status["error"]
    dsn = bounce_for(server, notification_id)
    assert parsed(dsn).get_content_type() == "multipart/report"
    told = wait_for(
        lambda: [json.loads(r.body) for r in receiver.for_notification(notification_id)
                 if json.loads(r.body)["status"] == "undelivered"],
        what="the undelivered callback",
    )  # fmt: skip
    assert told[0]["error"].startswith("bounced: 5.1.1")
    entry = requests.get(
        f"{postfix_stack.base}/v1/suppressions/{gone}", headers=caller.headers, timeout=10
    )
    assert entry.json()["reason"] == "bounced"
    # The same DSN again, and one for an address its token was not made for: nothing moves.
    assert piped(postfix_stack, dsn) == "undelivered"
    assert piped(postfix_stack, dsn.replace(gone.encode(), b"victim@example.com")) == "ignored"
    assert (
        requests.get(
            f"{postfix_stack.base}/v1/suppressions/victim@example.com",
            headers=caller.headers,
            timeout=10,
        ).status_code
        == 404
    )
    # The next mail to the address is not sent.
    again = caller.post("/v1/mail", {"to": [gone], "subject": "Hi", "text": "Again"})
    assert caller.wait_status(again, "suppressed")["status"] == "suppressed"
    # The client takes the address off its list: the old DSN replayed does not put it back.
    listed = f"{postfix_stack.base}/v1/suppressions/{gone}"
    assert requests.delete(listed, headers=caller.headers, timeout=10).status_code == 200
    assert piped(postfix_stack, dsn) == "undelivered"
    assert requests.get(listed, headers=caller.headers, timeout=10).status_code == 404


def soft_bounces(stack: Stack) -> float:
    found = re.search(r'notifier_bounces_total\{kind="soft"\} (\S+)', stack.get("/metrics").text)
    return float(found[1]) if found else 0.0


def test_a_mail_postfix_can_only_defer_is_a_soft_bounce_that_suppresses_nothing(
    postfix_stack: Stack, postfix: tuple[PostfixServer, SmtpSink]
) -> None:
    caller = Caller(postfix_stack, HOOKED)
    full = f"full-{uuid.uuid4().hex[:8]}@example.com"
    before = soft_bounces(postfix_stack)
    # The next hop defers the recipient twice: Postfix warns the sender, then delivers.
    postfix_stack.smtp.plan(full, "452 4.2.2 Mailbox full", "452 4.2.2 Mailbox full")
    notification_id = caller.post("/v1/mail", {"to": [full], "subject": "Hi", "text": "Hello"})
    server, _ = postfix
    warning = bounce_for(server, notification_id)
    assert b"delayed" in warning.lower()
    # Piped to Notifier as the docs say: counted soft, and nothing else moves.
    wait_for(lambda: soft_bounces(postfix_stack) > before, what="the soft bounce counted")
    shown = caller.status(notification_id)
    assert shown["status"] == "sent"
    assert shown["soft_bounce"]["status"].startswith("4."), shown
    assert "Mailbox full" in shown["soft_bounce"]["diagnostic"], shown
    wait_for(lambda: full in postfix_stack.smtp.by_recipient(), what="the mail, delivered late")
    answer = requests.get(
        f"{postfix_stack.base}/v1/suppressions/{full}", headers=caller.headers, timeout=10
    )
    assert answer.status_code == 404


@pytest.mark.parametrize("down", ["answering 503", "unreachable"])
def test_while_notifier_cannot_take_a_dsn_postfix_keeps_it_and_brings_it_again(
    postfix_stack: Stack, postfix: tuple[PostfixServer, SmtpSink], gate: Gate, down: str
) -> None:
    server, _ = postfix
    gone = f"gone-{uuid.uuid4().hex[:8]}@example.com"
    postfix_stack.smtp.plan(gone, f"550 5.1.1 <{gone}>: Recipient address rejected: User unknown")
    if down == "unreachable":
        gate.close()
    else:
        gate.refuse(503)
    try:
        response = postfix_stack.post("/v1/mail", {"to": [gone], "subject": "Hi", "text": "Hi"})
        assert response.status_code == 202, response.text
        notification_id = response.json()["id"]
        plain = notification_id.replace("-", "")
        # The documented pipe's curl fails, and Postfix keeps the DSN: deferred, tried again.
        # (Seconds apart here; a full run's load once held the second past 20 s.)
        wait_for(
            lambda: len(server.logged(plain, "relay=notifier-bounces", "status=deferred")) >= 2,
            timeout=60,
            what="Postfix's DSN deferred twice by the pipe",
        )
        assert server.logged(plain, "relay=notifier-bounces", "status=bounced") == []
        assert postfix_stack.status(notification_id)["status"] == "sent"
    finally:
        gate.open()
    # Notifier answers again: the DSN Postfix kept reaches it on the next try.
    status = postfix_stack.wait_status(notification_id, "undelivered")
    assert status["error"].startswith("bounced: 5.1.1"), status["error"]
    wait_for(
        lambda: server.logged(plain, "relay=notifier-bounces", "status=sent"),
        what="Postfix's DSN delivered by the pipe",
    )


def test_a_dsn_from_another_server_is_relayed_to_the_pipe_one_recipient_a_copy(
    postfix_stack: Stack, postfix: tuple[PostfixServer, SmtpSink]
) -> None:
    server, _ = postfix
    later = f"later-{uuid.uuid4().hex[:8]}@example.com"
    response = postfix_stack.post("/v1/mail", {"to": [later], "subject": "Hi", "text": "Hi"})
    assert response.status_code == 202, response.text
    notification_id = response.json()["id"]
    arrived(postfix_stack, notification_id)
    ((envelope, _),) = postfix_stack.smtp.received(notification_id)
    verp = envelope.mail_from
    assert verp and re.fullmatch(r"bounces\+\w+-\w+@bounces\.notifier\.test", verp), verp
    # The recipient's server took the mail and bounces it later, from the internet (not from
    # mynetworks: relay_domains is what lets it in), to our address and another of the domain
    # in one transaction: the pipe takes one recipient at a time, each with its X-Original-To.
    server.from_outside("", [verp, "postmaster@bounces.notifier.test"], dsn(verp, later))
    status = postfix_stack.wait_status(notification_id, "undelivered")
    assert status["error"].startswith("bounced: 5.1.1"), status["error"]
    wait_for(
        lambda: server.logged("<postmaster@bounces.notifier.test>", "relay=notifier-bounces",
                              "status=sent"),
        what="the other address's copy piped too",
    )  # fmt: skip

"""The SMTP provider against a real SMTP server (aiosmtpd)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from notifier.embedded import free_port
from notifier.errors import PermanentProviderError, TransientProviderError
from notifier.providers.signed_http import OperatorError
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from tests.support.harness.mail import mail
from tests.support.peers.smtp import SmtpSink


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    """A recording SMTP server for one test."""
    server = SmtpSink()
    server.start()
    yield server
    server.stop()


_opened: list[SmtpMailProvider] = []


@pytest.fixture(autouse=True)
def _close_providers() -> Iterator[None]:
    """Close every provider a test made, as a worker does when it stops."""
    yield
    while _opened:
        _opened.pop().close()


def provider_for(port: int, timeout: float = 5) -> SmtpMailProvider:
    provider = SmtpMailProvider(SmtpSettings(server="127.0.0.1", port=port, timeout=timeout))
    _opened.append(provider)
    return provider


def test_plain_text_arrives_with_headers_and_no_bcc(sink: SmtpSink) -> None:
    provider = provider_for(sink.port)
    message_id = provider.send_mail(
        message=mail(bcc=("audit@example.com",), reply_to="help@example.com")
    )
    ((envelope, message),) = sink.received("n1")
    assert envelope.rcpt_tos == ["ada@example.com", "audit@example.com"]
    assert message["Message-ID"] == message_id
    assert message["Reply-To"] == "help@example.com"
    assert message["Bcc"] is None
    assert message.get_content().strip() == "Plain body"


def test_text_and_html_are_alternatives(sink: SmtpSink) -> None:
    provider_for(sink.port).send_mail(message=mail(html="<p>Rich</p>"))
    ((_, message),) = sink.received("n1")
    assert message.get_content_type() == "multipart/alternative"
    plain = message.get_body(("plain",))
    rich = message.get_body(("html",))
    assert plain is not None and plain.get_content().strip() == "Plain body"
    assert rich is not None and rich.get_content().strip() == "<p>Rich</p>"


def test_non_ascii_subject_and_body_survive(sink: SmtpSink) -> None:
    subject, body = "您的验证码 — Grüße ✓", "正文：你好，世界 — naïve café"
    provider_for(sink.port).send_mail(message=mail(subject=subject, text=body))
    ((_, message),) = sink.received("n1")
    assert message["Subject"] == subject
    assert message.get_content().strip() == body


def test_one_connection_serves_many_mails(sink: SmtpSink) -> None:
    provider = provider_for(sink.port)
    for i in range(10):
        provider.send_mail(message=mail(f"n{i}"))
    assert sink.connections == 1
    assert provider.connections_opened == 1


def test_a_dropped_connection_is_reopened(sink: SmtpSink) -> None:
    provider = provider_for(sink.port)
    provider.send_mail(message=mail("before"))
    sink.stop()  # the server goes away and closes our kept connection
    sink.start()
    provider.send_mail(message=mail("after"))
    assert len(sink.received("after")) == 1
    assert provider.connections_opened == 2


def test_4xx_is_transient_and_5xx_permanent(sink: SmtpSink) -> None:
    provider = provider_for(sink.port)
    sink.plan("busy@example.com", "451 4.3.0 Try again later")
    sink.plan("gone@example.com", "550 5.1.1 No such user")
    with pytest.raises(TransientProviderError, match="451"):
        provider.send_mail(message=mail(to=("busy@example.com",)))
    with pytest.raises(PermanentProviderError, match="550"):
        provider.send_mail(message=mail(to=("gone@example.com",)))
    provider.send_mail(message=mail("ok"))  # the connection is still good
    assert sink.connections == 1


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        # SES's SMTP interface (the sandbox, or the account paused for its bounce rate), and
        # SendGrid's and Postmark's, about the sender; a relay that will not relay for us.
        ("sender", "553 5.7.1 <noreply@example.com>: Sender address rejected: not verified"),
        ("sender", "530 5.7.0 Authentication required"),
        ("data", "554 Message rejected: Sending paused for this account."),
        ("data", "550 The from address does not match a verified Sender Identity."),
        ("data", "554 Message rejected: Email address is not verified."),
        ("recipient", "554 5.7.1 <ada@example.com>: Relay access denied"),
        # X.1.8 is the sender's system address (RFC 3463), whatever the words.
        ("recipient", "550 5.1.8 Access denied, bad outbound sender"),
        ("data", "553 5.1.8 Domain of sender address bounces@b.example does not exist"),
    ],
)
def test_a_refusal_of_our_account_or_sender_is_the_operators_and_fails_over(
    sink: SmtpSink, where: str, reply: str, caplog: pytest.LogCaptureFixture
) -> None:
    """The contract: a refusal about the provider's account or configuration (sending paused,
    an unverified sender) fails over; only the recipient's or the content's is permanent."""
    provider = provider_for(sink.port)
    plan = {"sender": sink.plan_sender, "data": sink.refuse_data, "recipient": sink.plan}[where]
    plan("noreply@example.com" if where == "sender" else "ada@example.com", reply)
    with pytest.raises(OperatorError) as refused:
        provider.send_mail(message=mail())
    assert isinstance(refused.value, TransientProviderError)  # the next provider's turn
    assert refused.value.code == reply[:3]
    ours = [r for r in caplog.records if r.name.startswith("notifier")]
    assert [r.levelname for r in ours if "refused our configuration" in r.message] == ["ERROR"]
    assert "ada@example.com" not in str(refused.value) + "".join(r.getMessage() for r in ours)
    assert sink.received("n1") == []
    provider.send_mail(message=mail())  # the next attempt, on the same connection
    assert len(sink.received("n1")) == 1 and sink.connections == 1


@pytest.mark.parametrize(
    ("where", "reply"),
    [
        ("sender", "552 5.3.4 Message size exceeds fixed maximum message size"),
        ("data", "550 5.7.1 Message rejected as spam"),
        ("data", "554 5.6.0 Message content rejected"),
        ("recipient", "550 5.1.1 <ada@example.com>: Recipient address rejected: unknown"),
        # The recipient's mailbox, though the words could be an account's.
        ("recipient", "552 5.2.2 The email account that you tried to reach is over quota"),
        ("data", "550 5.2.1 Mailbox suspended: account suspended"),
    ],
)
def test_a_refusal_of_the_recipient_or_the_content_is_permanent(
    sink: SmtpSink, where: str, reply: str
) -> None:
    provider = provider_for(sink.port)
    plan = {"sender": sink.plan_sender, "data": sink.refuse_data, "recipient": sink.plan}[where]
    plan("noreply@example.com" if where == "sender" else "ada@example.com", reply)
    with pytest.raises(PermanentProviderError, match=reply[:3]):
        provider.send_mail(message=mail())
    assert sink.received("n1") == []


def test_refused_connection_is_transient() -> None:
    with pytest.raises(TransientProviderError, match="ConnectionRefusedError"):
        provider_for(free_port()).send_mail(message=mail())


def test_silent_server_times_out_as_transient() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    accepted: list[socket.socket] = []
    threading.Thread(target=lambda: accepted.append(listener.accept()[0]), daemon=True).start()
    started = time.monotonic()
    with pytest.raises(TransientProviderError, match=r"more than 0.5 s in all"):
        provider_for(listener.getsockname()[1], timeout=0.5).send_mail(message=mail())
    assert time.monotonic() - started < 3
    listener.close()
    for s in accepted:
        s.close()

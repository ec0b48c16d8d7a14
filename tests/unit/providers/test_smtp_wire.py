"""What the SMTP provider puts on the wire, checked octet for octet at a real server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from notifier.errors import PermanentProviderError
from notifier.providers.base import OutgoingMail
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from tests.support.harness.mail import CROWD, NEWSLETTER_HTML, NEWSLETTER_TEXT, mail
from tests.support.peers.smtp import SmtpSink, wire_faults


def deliver(sink: SmtpSink, message: OutgoingMail) -> None:
    provider = SmtpMailProvider(SmtpSettings(server="127.0.0.1", port=sink.port, timeout=5))
    try:
        provider.send_mail(message=message)
    finally:
        provider.close()


@pytest.fixture
def servers() -> Iterator[Callable[..., SmtpSink]]:
    """Start strict SMTP servers for one test: ``servers()``, or ``servers(smtputf8=False)``."""
    started: list[SmtpSink] = []

    def start(**options: bool) -> SmtpSink:
        server = SmtpSink(**options)
        server.start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.mark.parametrize(
    "message",
    [
        mail(text="a" * 700),
        mail(to=CROWD, text="Short"),
        mail(to=CROWD, subject="Newsletter — Grüße ✓", text=NEWSLETTER_TEXT, html=NEWSLETTER_HTML),
        mail(text="Grüße aus Köln — " * 400, html="<p>" + "你好，世界。" * 1000 + "</p>"),
    ],
    ids=["700-characters", "50-recipients", "newsletter", "non-ascii"],
)
def test_realistic_mail_is_taken_by_a_strict_server(
    servers: Callable[..., SmtpSink], message: OutgoingMail
) -> None:
    sink = servers()
    deliver(sink, message)
    assert sink.handler.refused == []
    (data,) = sink.raw("n1")
    assert wire_faults(data) == []
    ((envelope, _),) = sink.received("n1")
    assert envelope.rcpt_tos == list(message.recipients)


def test_dots_at_line_starts_survive_the_transparency_rule(
    servers: Callable[..., SmtpSink],
) -> None:
    sink = servers()
    text = ".\n..\n.hidden\nend"
    deliver(sink, mail(text=text))
    ((_, message),) = sink.received("n1")
    assert message.get_content().replace("\r\n", "\n") == text + "\n"  # SMTP ends the last line


def test_punycode_goes_to_a_server_without_smtputf8_as_given(
    servers: Callable[..., SmtpSink],
) -> None:
    ascii_only = servers(smtputf8=False)
    deliver(ascii_only, mail(to=("ada@xn--bcher-kva.example",)))
    ((envelope, message),) = ascii_only.received("n1")
    assert envelope.rcpt_tos == ["ada@xn--bcher-kva.example"]
    assert "SMTPUTF8" not in envelope.mail_options
    assert message["To"] == "ada@xn--bcher-kva.example"


def test_a_non_ascii_address_uses_smtputf8_where_offered(servers: Callable[..., SmtpSink]) -> None:
    sink = servers()
    deliver(sink, mail(to=("用户@例子.广告",)))
    ((envelope, message),) = sink.received("n1")
    assert envelope.rcpt_tos == ["用户@例子.广告"]
    assert "SMTPUTF8" in envelope.mail_options
    assert message["To"] == "用户@例子.广告"


def test_a_non_ascii_address_without_smtputf8_fails_for_good(
    servers: Callable[..., SmtpSink],
) -> None:
    ascii_only = servers(smtputf8=False)
    provider = SmtpMailProvider(SmtpSettings(server="127.0.0.1", port=ascii_only.port, timeout=5))
    try:
        with pytest.raises(PermanentProviderError, match="SMTPUTF8"):
            provider.send_mail(message=mail(to=("用户@例子.广告",)))
        provider.send_mail(message=mail(notification_id="n2"))  # the kept connection is still good
    finally:
        provider.close()
    assert ascii_only.received("n1") == []
    assert len(ascii_only.received("n2")) == 1
    assert ascii_only.connections == 1

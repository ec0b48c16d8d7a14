from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

from notifier.providers.base import OutgoingMail
from notifier.providers.console import ConsoleMailProvider, ConsoleSmsProvider
from notifier.providers.outbox import OutboxMailProvider, OutboxSettings

MAIL = OutgoingMail(
    notification_id="n1",
    sender="noreply@example.com",
    to=("ada@example.com",),
    bcc=("secret-audit@example.com",),
    subject="Grüße",
    text="Hallo",
)


def test_outbox_writes_one_eml_file_a_message(tmp_path: Path) -> None:
    provider = OutboxMailProvider(OutboxSettings(dir=tmp_path / "outbox"))
    message_id = provider.send_mail(message=MAIL)
    (path,) = (tmp_path / "outbox").iterdir()
    assert path.name == "n1.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["Message-ID"] == message_id
    assert parsed["Subject"] == "Grüße"
    assert "secret-audit" not in path.read_text()


def test_console_prints_the_message() -> None:
    stream = io.StringIO()
    ConsoleMailProvider(stream).send_mail(message=MAIL)
    assert "To: ada@example.com" in stream.getvalue()
    assert "X-Notification-Id: n1" in stream.getvalue()


def test_console_sms_prints_the_number_the_text_and_a_clients_sender() -> None:
    stream = io.StringIO()
    sms = ConsoleSmsProvider(stream)
    assert sms.send_sms(to="+8613800138000", body="Acme: your parcel ships today.") == "console-1"
    sms.send_sms(to="+15005550006", body="Hi", sender="Acme")
    assert stream.getvalue().splitlines() == [
        "SMS to +8613800138000: Acme: your parcel ships today.",
        "SMS to +15005550006 from Acme: Hi",
    ]

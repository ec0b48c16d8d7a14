from __future__ import annotations

import email
import email.policy
import io
from pathlib import Path

from notifier.providers.base import OutgoingMail
from notifier.providers.console import ConsoleMailProvider
from notifier.providers.outbox import OutboxMailProvider

MAIL = OutgoingMail(
    notification_id="n1",
    sender="noreply@example.com",
    to=("ada@example.com",),
    bcc=("secret-audit@example.com",),
    subject="Grüße",
    text="Hallo",
)


def test_outbox_writes_one_eml_file_a_message(tmp_path: Path) -> None:
    provider = OutboxMailProvider(tmp_path / "outbox")
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


def test_internationalised_addresses_take_the_smtputf8_path(tmp_path: Path) -> None:
    from email.message import EmailMessage

    from notifier.providers.mime import build_mime

    mail = OutgoingMail(
        notification_id="n2",
        sender="noreply@example.com",
        to=("用户@例子.广告",),
        subject="你好",
        text="正文",
    )
    mime = build_mime(mail)
    assert isinstance(mime, EmailMessage)
    parsed = email.message_from_bytes(mime.as_bytes(), policy=email.policy.default)
    assert parsed["To"] == "用户@例子.广告"
    assert parsed.get_content().strip() == "正文"

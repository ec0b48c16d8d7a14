"""Turn an :class:`OutgoingMail` into a MIME message (shared by the SMTP and outbox providers).

Built with the classic ``email.mime`` classes rather than ``EmailMessage``: the modern header
registry parses every header it is given, which cost more than the whole SMTP exchange. Our
headers need no parsing: the addresses were validated on the way in and the subject is one
line; a non-ASCII subject is RFC 2047-encoded, bodies are UTF-8. Addresses that are not ASCII
(internationalised mail) take the modern, slower path, which knows SMTPUTF8.
"""

from __future__ import annotations

import email.policy
import email.utils
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from notifier.providers.base import OutgoingMail


def build_mime(message: OutgoingMail) -> Message:
    """Build the MIME message: text, HTML, or both as multipart/alternative; Bcc left out."""
    addresses = (message.sender, *message.recipients, message.reply_to or "")
    if not all(a.isascii() for a in addresses):
        return _international(message)
    mime: Message
    if message.text is not None and message.html is not None:
        mime = MIMEMultipart("alternative")
        mime.attach(MIMEText(message.text, "plain", "utf-8"))
        mime.attach(MIMEText(message.html, "html", "utf-8"))
    elif message.text is not None:
        mime = MIMEText(message.text, "plain", "utf-8")
    else:
        mime = MIMEText(message.html or "", "html", "utf-8")
    subject = message.subject
    for name, value in _headers(message):
        mime[name] = value
    mime["Subject"] = subject if subject.isascii() else Header(subject, "utf-8").encode()
    return mime


def _headers(message: OutgoingMail) -> list[tuple[str, str]]:
    domain = message.sender.rpartition("@")[2].rstrip(">") or None
    headers = [("From", message.sender)]
    if message.to:
        headers.append(("To", ", ".join(message.to)))
    if message.cc:
        headers.append(("Cc", ", ".join(message.cc)))
    if message.reply_to:
        headers.append(("Reply-To", message.reply_to))
    headers += [
        ("Date", email.utils.formatdate(localtime=False, usegmt=True)),
        ("Message-ID", email.utils.make_msgid(domain=domain)),
        ("X-Notification-Id", message.notification_id),
        *message.headers,
    ]
    return headers


def _international(message: OutgoingMail) -> EmailMessage:
    mime = EmailMessage(policy=email.policy.SMTPUTF8)
    for name, value in _headers(message):
        mime[name] = value
    mime["Subject"] = message.subject
    if message.text is not None:
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
    else:
        mime.set_content(message.html or "", subtype="html")
    return mime

"""Turn an :class:`OutgoingMail` into a MIME message (shared by the SMTP and outbox providers)."""

from __future__ import annotations

import email.policy
import email.utils
from email.message import EmailMessage

from notifier.providers.base import OutgoingMail


def build_mime(message: OutgoingMail) -> EmailMessage:
    """Build the MIME message: text, HTML, or both as multipart/alternative; Bcc left out."""
    mime = EmailMessage(policy=email.policy.SMTP)
    mime["From"] = message.sender
    if message.to:
        mime["To"] = ", ".join(message.to)
    if message.cc:
        mime["Cc"] = ", ".join(message.cc)
    if message.reply_to:
        mime["Reply-To"] = message.reply_to
    mime["Subject"] = message.subject
    mime["Date"] = email.utils.formatdate(localtime=False, usegmt=True)
    domain = message.sender.rpartition("@")[2].rstrip(">") or None
    mime["Message-ID"] = email.utils.make_msgid(domain=domain)
    mime["X-Notification-Id"] = message.notification_id
    for name, value in message.headers:
        mime[name] = value
    if message.text is not None:
        mime.set_content(message.text)
        if message.html is not None:
            mime.add_alternative(message.html, subtype="html")
    else:
        mime.set_content(message.html or "", subtype="html")
    return mime

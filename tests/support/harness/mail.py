"""Mails the tests send: an OutgoingMail builder, a long newsletter, a stored payload."""

from __future__ import annotations

from notifier.providers.base import OutgoingMail

PARAGRAPH = "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod. " * 70
NEWSLETTER_TEXT = "\n\n".join([PARAGRAPH] * 12)  # 12 lines of ~5,000 characters
NEWSLETTER_HTML = (
    "<html><body>" + "".join(f"<p>{PARAGRAPH}</p>" for _ in range(12)) + "</body></html>"
)
CROWD = tuple(f"reader.number{i:02d}@newsletter.example.com" for i in range(50))

# A mail task's stored payload.
PAYLOAD = {
    "sender": "noreply@example.com",
    "to": ["ada@example.com"],
    "cc": [],
    "bcc": ["audit@example.com"],
    "reply_to": None,
    "subject": "Hi",
    "text": "Hello",
    "html": None,
}


def mail(n: str = "n1", **kw: object) -> OutgoingMail:
    """A plain-text mail to ada@example.com, with ``kw`` changing any field."""
    values: dict[str, object] = {
        "notification_id": n,
        "sender": "Notifier <noreply@example.com>",
        "to": ("ada@example.com",),
        "subject": "Hello",
        "text": "Plain body",
    }
    values.update(kw)
    return OutgoingMail(**values)  # type: ignore[arg-type]

"""Mail through SendGrid's v3 Mail Send (``POST /v3/mail/send``, a Bearer API key), over requests.

The body is SendGrid's JSON, not MIME: SendGrid writes the message itself and signs it with the
domain authenticated in its console (``NOTIFIER_DKIM_KEYS`` does not apply). What goes in: the
From, the recipients in one personalization (to, cc, bcc; each address once, which SendGrid
requires), the Reply-To, the subject, the text and the HTML (text/plain first, as SendGrid
requires), our headers (``X-Notification-Id``, and the one-click unsubscribe headers of bulk
mail), and ``custom_args`` ``{"notification_id": …}``, which SendGrid's Event Webhook repeats in
every event of the mail. SendGrid's ``X-Message-Id`` is the record's ``provider_ref``; an
event's ``sg_message_id`` starts with it (``<X-Message-Id>.<SendGrid's own suffix>``).

Answers (SendGrid's "Mail Send" reference and its "Errors" page): 202 taken; 429 (its rate
limit) and 5xx transient; 401 and 403 (a key that is wrong, revoked or lacks ``mail.send``, a From
that is not a verified sender identity) the operator's: transient for the mail, which the next
provider may send, and logged at ERROR; 400 and 413 (the body: an address, the content, its
size) permanent; anything else the operator's.
"""

from __future__ import annotations

import json
import logging
from email.utils import parseaddr
from typing import Any, ClassVar

import requests
from pydantic import Field, SecretStr, field_validator

from notifier.deadline import DeadlineAdapter, session
from notifier.errors import (
    NotForThisProvider,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from notifier.providers.base import OutgoingMail
from notifier.providers.mime import needs_smtputf8
from notifier.providers.signed_http import operator_error, vendor_message
from notifier.sendgrid_webhook import load_public_key
from notifier.settings import Settings, VendorSettings, https_in_production, text

log = logging.getLogger(__name__)
PATH = "/v3/mail/send"


class SendGridSettings(VendorSettings):
    """``NOTIFIER_SENDGRID_*``: the API key, where the API is (a host, no ``/v3``), and the
    Signed Event Webhook's public key (unset: ``POST /v1/receipts/sendgrid`` refuses all)."""

    prefix: ClassVar[str] = "sendgrid"
    required: ClassVar[tuple[str, ...]] = ("api_key",)

    api_key: SecretStr | None = None
    # https://api.eu.sendgrid.com for an EU-pinned account's data; a local test server.
    base_url: str = Field(default="https://api.sendgrid.com", pattern=r"^https?://[^\s/]+/?$")
    # Seconds one call may take in all, the answer read included, however slowly it comes.
    timeout: float = Field(default=10.0, gt=0)
    # The Event Webhook's verification key as the console shows it (base64 of the DER public
    # key), or PEM: see notifier/sendgrid_webhook.py.
    webhook_public_key: str | None = None

    @field_validator("webhook_public_key")
    @classmethod
    def _a_key(cls, value: str | None) -> str | None:
        if value is not None:
            load_public_key(value)  # one that is not a key stops start-up, saying so
        return value

    def check(self, settings: Settings) -> None:
        """A listed SendGrid needs its key; in production its base URL is https."""
        super().check(settings)
        https_in_production(settings, self.variable("base_url"), self.base_url, here=False)


def mail_send_body(message: OutgoingMail) -> dict[str, Any]:
    """The v3 Mail Send body of ``message``."""
    if not message.to:
        # "The to parameter is required for all personalization objects": SendGrid's limit,
        # not the recipients' (SES and SMTP carry a mail to Cc or Bcc only), so the next
        # provider's turn.
        raise NotForThisProvider(
            "SendGrid sends no mail without a To recipient", provider=SendGridMailProvider.name
        )
    if needs_smtputf8(message):
        # SendGrid answers 202 and then drops the mail ("Invalid": sendgrid-csharp#656,
        # sendgrid-python#119), and its dropped event would suppress a good address: SMTP's
        # turn, where the relay offers SMTPUTF8 (SES steps aside the same way).
        raise NotForThisProvider(
            "SendGrid takes no address that is not ASCII", provider=SendGridMailProvider.name
        )
    seen: set[str] = set()

    def once(addresses: tuple[str, ...]) -> list[dict[str, str]]:
        # "Each email address in the personalization block should be unique between to, cc,
        # and bcc", told apart without regard to case, within one list too (sendgrid-ruby#461):
        # a second one is left out, as one SMTP transaction delivers it once.
        kept = []
        for address in addresses:
            if address.lower() not in seen:
                seen.add(address.lower())
                kept.append({"email": address})
        return kept

    personalization = {"to": once(message.to)}
    for part, addresses in (("cc", message.cc), ("bcc", message.bcc)):
        if found := once(addresses):
            personalization[part] = found
    content = [
        {"type": kind, "value": value}
        for kind, value in (("text/plain", message.text), ("text/html", message.html))
        if value  # SendGrid refuses an empty value...
    ]
    body: dict[str, Any] = {
        "personalizations": [personalization],
        "from": _mailbox(message.sender),
        "subject": message.subject,
        "content": content or [{"type": "text/plain", "value": " "}],  # ...so none is a space
        "headers": {"X-Notification-Id": message.notification_id, **dict(message.headers)},
        "custom_args": {"notification_id": message.notification_id},
    }
    if message.reply_to:
        body["reply_to"] = _mailbox(message.reply_to)
    return body


def _mailbox(value: str) -> dict[str, str]:
    """``Name <address>`` (or a bare address) as SendGrid's ``{"email", "name"}``."""
    name, address = parseaddr(value)
    return {"email": address, "name": name} if name else {"email": address}


class SendGridMailProvider:
    """POST each mail to Mail Send on one keep-alive session shared by the worker's threads."""

    name = "sendgrid"

    def __init__(self, settings: SendGridSettings, *, max_connections: int = 32) -> None:
        """``max_connections``: kept-alive HTTPS connections, one per worker thread, so none is
        opened per mail."""
        self._url = settings.base_url.rstrip("/") + PATH
        # Each call ``timeout`` seconds in all, however slowly SendGrid answers. No automatic
        # retries: Mail Send is not idempotent, so a retry is the task's decision.
        self._session = session(
            DeadlineAdapter(total=settings.timeout, max_connections=max_connections)
        )
        self._session.headers.update({
            "Authorization": f"Bearer {text(settings.api_key)}",
            "Content-Type": "application/json",
            "Accept": "application/json",
        })  # fmt: skip

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Send the mail; SendGrid's ``X-Message-Id`` is the provider's id of it."""
        data = json.dumps(mail_send_body(message), ensure_ascii=False).encode()
        try:
            answer = self._session.post(self._url, data=data, allow_redirects=False)
        except requests.RequestException as e:
            raise TransientProviderError(
                f"SendGrid unreachable: {type(e).__name__}: {e}", provider=self.name
            ) from e
        if answer.status_code == 202:
            return answer.headers.get("X-Message-Id", "")
        raise self._sorted(answer)

    def _sorted(self, answer: requests.Response) -> ProviderError:
        status = answer.status_code
        error = f"SendGrid {status}: {_errors(answer)}"
        if status == 429 or status >= 500:
            return TransientProviderError(error, provider=self.name)
        if status in (400, 413):
            return PermanentProviderError(error, provider=self.name)
        return operator_error(self.name, str(status), _errors(answer))

    def close(self) -> None:
        """Close the kept-alive connections; the provider may be used again afterwards."""
        self._session.close()


def _errors(answer: requests.Response) -> str:
    """SendGrid's ``{"errors": [{"field", "message"}]}`` as one short line, masked."""
    try:
        found = answer.json().get("errors") or []
        said = "; ".join(
            f"{e['field']}: {e['message']}" if e.get("field") else str(e.get("message"))
            for e in found
            if isinstance(e, dict)
        )
    except (ValueError, AttributeError):
        said = ""
    return vendor_message(said or answer.reason or "no reason given")

"""SMS through Twilio's Messages API, with the official SDK."""

from __future__ import annotations

import re
from typing import Any, ClassVar

import requests
from pydantic import Field, SecretStr
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifier.deadline import DeadlineAdapter, session
from notifier.errors import NotForThisProvider, PermanentProviderError, TransientProviderError
from notifier.providers.signed_http import operator_error
from notifier.settings import Settings, VendorSettings, https_in_production, text

# A Messaging Service's SID; anything else a client gives as its sender is a From: an E.164
# number, a short code (3 to 8 digits: Twilio's From takes one), or an alphanumeric sender id (1
# to 11 letters, digits and spaces, a letter among them).
MESSAGING_SERVICE = re.compile(r"^MG[0-9a-fA-F]{32}$")
SENDER_ID = re.compile(r"^(?=.*[A-Za-z])[A-Za-z0-9 ]{1,11}$")
SHORT_CODE = re.compile(r"^[0-9]{3,8}$")
# Twilio answers 400 for refusals of our account or sender as for the recipient's (its "Error
# and Warning Dictionary"): 21408 the account may not text the number's region, 21606 and 21659
# the From is not one of ours or not for this destination, 21608 a trial account's unverified
# number, 21660 a From of another account, 21701/21703/21705 the Messaging Service, 21212 a From
# it does not take (a generic sender id), 21609 a StatusCallback it cannot reach or parse
# (NOTIFIER_PUBLIC_URL's host with an underscore, or not public). Another
# provider may well send it: the operator's to fix, logged at ERROR, and the next provider's
# turn. 21612, this To and From cannot go together (the country's sender rules, a network that
# takes no short code, a number no SMS reaches, no connectivity): not for Twilio, perhaps for
# the next provider, and failed for good when no provider can (no retry would change it).
# 21611, the From's queue is full: load.
OPERATOR_CODES = frozenset({21212, 21408, 21606, 21608, 21609, 21659, 21660, 21701, 21703, 21705})
NOT_FOR_TWILIO = 21612
QUEUE_FULL = 21611
E164 = re.compile(r"^\+[1-9][0-9]{6,14}$")


def sender_fault(sender: str) -> str | None:
    """Why ``sender`` cannot be a Twilio sender (a client's ``sms_sender``), or None."""
    if any(form.match(sender) for form in (MESSAGING_SERVICE, SENDER_ID, E164, SHORT_CODE)):
        return None
    return (
        "a Twilio sender is an E.164 number, a short code (3 to 8 digits), an alphanumeric sender"
        " id (1 to 11 letters, digits and spaces) or a Messaging Service SID (MG and 32 hex digits)"
    )


class TwilioSettings(VendorSettings):
    """``NOTIFIER_TWILIO_*``: the account, the sender, and where the API is."""

    prefix: ClassVar[str] = "twilio"

    account_sid: str | None = None
    auth_token: SecretStr | None = None
    from_: str | None = Field(default=None, validation_alias="from")
    messaging_service_sid: str | None = None
    # Another base URL than https://api.twilio.com: a regional edge, or a local test server.
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(:\d+)?/?$")
    # Seconds one call may take in all, however slowly Twilio (or what stands for it) answers.
    timeout: float = Field(default=10.0, gt=0)

    def check(self, settings: Settings) -> None:
        """A listed Twilio needs its account, its token and a sender (a number or a service);
        a client's own sender for it must be one Twilio takes; in production its base URL is
        https (the token signs every call, and the calls carry numbers and codes)."""
        if self.prefix in settings.providers_listed:
            https_in_production(settings, self.variable("base_url"), self.base_url)
        for client in settings.api_keys or ():
            given = client.sms_sender.get(self.prefix)
            if given is not None and (fault := sender_fault(given)):
                raise ValueError(f"NOTIFIER_API_KEYS: sms_sender of {client.client!r}: {fault}")
        if self.prefix not in settings.providers_listed:
            return
        why = "required when NOTIFIER_SMS_PROVIDERS lists twilio"
        if missing := self.unset("account_sid", "auth_token"):
            raise ValueError(f"{missing}: {why}")
        if not (self.from_ or self.messaging_service_sid):
            raise ValueError(
                f"NOTIFIER_TWILIO_FROM: {why} (or NOTIFIER_TWILIO_MESSAGING_SERVICE_SID)"
            )


class TwilioSmsProvider:
    """Send with ``client.messages.create`` on one client shared by the worker's threads."""

    name = "twilio"

    def __init__(
        self,
        settings: TwilioSettings,
        *,
        max_connections: int = 32,
        status_callback: str | None = None,
    ) -> None:
        """``max_connections``: kept-alive HTTPS connections, one per worker thread, so none is
        opened per message. ``status_callback``: where Twilio posts the message's delivery
        receipts (our /v1/receipts/twilio), if anywhere."""
        self._settings = settings
        self._status_callback = status_callback
        http = TwilioHttpClient(timeout=settings.timeout)
        # The SDK's timeout is the socket's, a read at a time: the adapter makes it the whole
        # call's (notifier.deadline). And the SDK's own pool keeps min(32, cores + 4)
        # connections: with more threads than that it opens and discards a connection (a TLS
        # handshake to Twilio) per message.
        adapter = DeadlineAdapter(total=settings.timeout, max_connections=max_connections)
        session(adapter, into=http.session)
        self._client = Client(
            text(settings.account_sid), text(settings.auth_token), http_client=http
        )
        if settings.base_url:
            self._client.api.base_url = settings.base_url.rstrip("/")

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        """Create the message from ``sender`` (a client's: a number, an alphanumeric sender id
        or a Messaging Service SID; None: the settings'); 429, 5xx, a refused login and network
        faults are transient."""
        sender_field = self._sender(sender)
        try:
            if self._status_callback:
                sender_field["status_callback"] = self._status_callback
            message = self._client.messages.create(to=to, body=body, **sender_field)
        except TwilioRestException as e:
            error = f"Twilio {e.status} (code {e.code}): {e.msg}"
            if e.code in OPERATOR_CODES:
                raise operator_error(self.name, str(e.code), f"{e.status}: {e.msg}") from e
            if e.code == NOT_FOR_TWILIO:
                raise NotForThisProvider(error, provider=self.name) from e
            # 401/403 are our credentials, not the message: another provider or a later
            # try (after the operator fixed them) can still deliver it.
            if e.status in (401, 403, 408, 429) or e.status >= 500 or e.code == QUEUE_FULL:
                raise TransientProviderError(error, provider=self.name) from e
            raise PermanentProviderError(error, provider=self.name) from e
        except (requests.RequestException, TwilioException) as e:
            raise TransientProviderError(
                f"Twilio unreachable: {type(e).__name__}: {e}", provider=self.name
            ) from e
        return str(message.sid)

    def _sender(self, sender: str | None) -> dict[str, Any]:
        """The create call's sender: ``MessagingServiceSid`` for a service's SID, else ``From``."""
        if sender is not None:
            key = "messaging_service_sid" if MESSAGING_SERVICE.match(sender) else "from_"
            return {key: sender}
        if self._settings.messaging_service_sid:
            return {"messaging_service_sid": self._settings.messaging_service_sid}
        return {"from_": self._settings.from_}

    def close(self) -> None:
        """Close the SDK's HTTP session."""
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()

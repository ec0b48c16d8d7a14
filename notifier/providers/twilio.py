"""SMS through Twilio's Messages API, with the official SDK."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifier.errors import PermanentProviderError, TransientProviderError

# The SDK logs every request at INFO; the URL and headers are no use in our logs.
logging.getLogger("twilio.http_client").setLevel(logging.WARNING)


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    # Another base URL than https://api.twilio.com: a regional edge, or a local test server.
    base_url: str | None = None
    timeout: float = 10.0


class TwilioSmsProvider:
    """Send with ``client.messages.create``; the SDK's HTTP session keeps its connections."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings
        self._client = Client(
            settings.account_sid,
            settings.auth_token,
            http_client=TwilioHttpClient(timeout=settings.timeout),
        )
        if settings.base_url:
            self._client.api.base_url = settings.base_url.rstrip("/")

    def send_sms(self, *, to: str, body: str) -> str:
        """Create the message; 429, 5xx, a refused login and network faults are transient."""
        sender: dict[str, Any] = (
            {"messaging_service_sid": self._settings.messaging_service_sid}
            if self._settings.messaging_service_sid
            else {"from_": self._settings.from_}
        )
        try:
            message = self._client.messages.create(to=to, body=body, **sender)
        except TwilioRestException as e:
            error = f"Twilio {e.status} (code {e.code}): {e.msg}"
            # 401/403 are our credentials, not the message: another provider or a later
            # try (after the operator fixed them) can still deliver it.
            if e.status in (401, 403, 408, 429) or e.status >= 500:
                raise TransientProviderError(error, provider=self.name) from e
            raise PermanentProviderError(error, provider=self.name) from e
        except (requests.RequestException, TwilioException) as e:
            raise TransientProviderError(
                f"Twilio unreachable: {type(e).__name__}: {e}", provider=self.name
            ) from e
        return str(message.sid)

    def close(self) -> None:
        """Close the SDK's HTTP session."""
        session = getattr(self._client.http_client, "session", None)
        if session is not None:
            session.close()

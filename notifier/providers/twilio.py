"""SMS through Twilio's Messages API, with the official SDK."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.http_client import TwilioHttpClient
from twilio.rest import Client

from notifier.errors import PermanentProviderError, TransientProviderError


@dataclass(frozen=True)
class TwilioSettings:
    account_sid: str
    auth_token: str
    from_: str | None = None
    messaging_service_sid: str | None = None
    # Another base URL than https://api.twilio.com: a regional edge, or a local test server.
    base_url: str | None = None
    timeout: float = 10.0
    # Kept-alive HTTPS connections: one per worker thread, so none is opened per message.
    max_connections: int = 32
    # Where Twilio posts the message's delivery receipts (our /v1/receipts/twilio), if anywhere.
    status_callback: str | None = None


class TwilioSmsProvider:
    """Send with ``client.messages.create`` on one client shared by the worker's threads."""

    name = "twilio"

    def __init__(self, settings: TwilioSettings) -> None:
        self._settings = settings
        http = TwilioHttpClient(timeout=settings.timeout)
        # The SDK's own pool keeps min(32, cores + 4) connections: with more threads than that
        # it opens and discards a connection (a TLS handshake to Twilio) per message.
        adapter = HTTPAdapter(
            pool_connections=1, pool_maxsize=settings.max_connections, max_retries=0
        )
        for scheme in ("https://", "http://"):
            http.session.mount(scheme, adapter)
        self._client = Client(settings.account_sid, settings.auth_token, http_client=http)
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
            if self._settings.status_callback:
                sender["status_callback"] = self._settings.status_callback
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

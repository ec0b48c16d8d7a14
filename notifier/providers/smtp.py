"""SMTP through Flask-Mail's settings and connection, one kept connection per process."""

from __future__ import annotations

import contextlib
import logging
import smtplib
import threading
from dataclasses import dataclass
from typing import Any

from flask_mail import Connection, Mail

from notifier.errors import PermanentProviderError, TransientProviderError
from notifier.providers.base import OutgoingMail
from notifier.providers.mime import Wire, build_wire

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SmtpSettings:
    """Flask-Mail's settings, plus the timeout Flask-Mail lacks."""

    server: str = "localhost"
    port: int = 25
    username: str | None = None
    password: str | None = None
    use_tls: bool = False
    use_ssl: bool = False
    timeout: float = 10.0


class _TimedConnection(Connection):
    """Flask-Mail's connection, opened with a timeout on every socket operation."""

    def __init__(self, mail: Any, timeout: float) -> None:
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        # Flask-Mail opens smtplib.SMTP without a timeout: a silent server would hang the worker.
        cls = smtplib.SMTP_SSL if self.mail.use_ssl else smtplib.SMTP
        host = cls(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host


class _StaleConnection(Exception):
    """The kept connection was closed by the server while idle."""


class SmtpMailProvider:
    """Deliver over SMTP, keeping one connection open and re-opening it when it breaks."""

    name = "smtp"

    def __init__(self, settings: SmtpSettings) -> None:
        self._mail = Mail().init_mail(
            {
                "MAIL_SERVER": settings.server,
                "MAIL_PORT": settings.port,
                "MAIL_USERNAME": settings.username,
                "MAIL_PASSWORD": settings.password,
                "MAIL_USE_TLS": settings.use_tls,
                "MAIL_USE_SSL": settings.use_ssl,
                "MAIL_SUPPRESS_SEND": False,
            }
        )
        self._timeout = settings.timeout
        self._host: smtplib.SMTP | None = None
        self._lock = threading.Lock()
        self.connections_opened = 0

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Send one mail; a kept connection that went stale is re-opened once."""
        wire = build_wire(message)
        with self._lock:
            try:
                refused = self._send(wire, message, stale_ok=self._host is not None)
            except _StaleConnection:
                log.info("smtp connection went stale; reconnecting")
                refused = self._send(wire, message, stale_ok=False)
        if refused:
            log.warning("smtp refused %d of %d recipients", len(refused), len(message.recipients))
        return wire.message_id

    def _send(
        self, wire: Wire, message: OutgoingMail, *, stale_ok: bool
    ) -> dict[str, tuple[int, bytes]]:
        try:
            host = self._connection()
            return host.sendmail(
                message.sender, list(message.recipients), wire.data, wire.mail_options
            )
        except smtplib.SMTPNotSupportedError as e:
            # An address that is not ASCII, and a server without SMTPUTF8: smtplib refuses
            # before MAIL FROM is sent, the connection stays good, and no retry can help.
            raise PermanentProviderError(
                f"the SMTP server does not take SMTPUTF8, which a recipient needs: {e}",
                provider=self.name,
            ) from e
        except smtplib.SMTPServerDisconnected as e:
            self._drop()
            # A kept connection the server closed while idle fails on its first command, before
            # the message went out, so one fresh try cannot send it twice. A timeout can come
            # after the message went out (a slow answer to the final dot): that one waits for
            # the task's backoff like any other transient failure.
            if stale_ok and not isinstance(e.__context__, TimeoutError):
                raise _StaleConnection from e
            raise TransientProviderError(f"SMTP connection lost: {e}", provider=self.name) from e
        except smtplib.SMTPRecipientsRefused as e:
            code, reply = min(e.recipients.values())
            text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
            raise _classified(
                code, f"SMTP {code}: {text} (all recipients refused)", self.name
            ) from e
        except smtplib.SMTPResponseException as e:
            if e.smtp_code == 421 or isinstance(e, smtplib.SMTPAuthenticationError):
                # The server is closing, or refuses our login: the operator's to fix, and
                # the mail waits for it rather than failing.
                self._drop()
                raise TransientProviderError(_describe(e), provider=self.name) from e
            raise _classified(e.smtp_code, _describe(e), self.name) from e
        except (smtplib.SMTPException, OSError) as e:
            self._drop()
            raise TransientProviderError(
                f"SMTP connection failed: {type(e).__name__}: {e}", provider=self.name
            ) from e

    def _connection(self) -> smtplib.SMTP:
        if self._host is None:
            self._host = _TimedConnection(self._mail, self._timeout).configure_host()
            self.connections_opened += 1
        return self._host

    def _drop(self) -> None:
        host, self._host = self._host, None
        if host is not None:
            with contextlib.suppress(OSError):
                host.close()

    def close(self) -> None:
        """Say QUIT and close the kept connection."""
        with self._lock:
            host, self._host = self._host, None
            if host is not None:
                try:
                    host.quit()
                except (smtplib.SMTPException, OSError):
                    host.close()


def _classified(
    code: int, error: str, provider: str
) -> TransientProviderError | PermanentProviderError:
    if code >= 500:
        return PermanentProviderError(error, provider=provider)
    return TransientProviderError(error, provider=provider)


def _describe(e: smtplib.SMTPResponseException) -> str:
    error = e.smtp_error
    text = error.decode("utf-8", "replace") if isinstance(error, bytes) else str(error)
    return f"SMTP {e.smtp_code}: {text}"

"""SMTP delivery: Flask-Mail's settings and connection, with a pool of kept connections.

What Flask-Mail provides here: its settings (``MAIL_SERVER``, ``_PORT``, ``_USERNAME``,
``_PASSWORD``, ``_USE_TLS``, ``_USE_SSL``, which ``NOTIFIER_MAIL_*`` mirror), held by ``Mail``,
and its ``Connection``, the object that owns one SMTP session. Its ``configure_host`` (open SMTP
or SMTP over SSL, STARTTLS, log in) is redone (:mod:`notifier.patches.flask_mail_timeout`) only to
pass a timeout to the socket, which Flask-Mail opens without one: a silent server would hang a
worker thread.

What is ours, and why: Flask-Mail opens a connection per ``send`` (or per ``mail.connect()``
block, in one thread), builds its own ``Message``, whose line lengths and header encoding are
not ours to choose, and lets raw ``smtplib`` exceptions through. A worker sends from many
threads, so connections are kept in a pool and reused (:class:`_Pool`); the wire form is built
by :mod:`notifier.providers.mime` (CRLF, 998-octet lines, encoded headers, SMTPUTF8 only when an
address needs it); and failures become our transient and permanent provider errors.
"""

from __future__ import annotations

import contextlib
import logging
import re
import smtplib
import threading
import time
from collections.abc import Callable
from typing import ClassVar

from flask_mail import Mail
from pydantic import Field, SecretStr, model_validator

from notifier import tracing
from notifier.deadline import Deadline, let_go, watch
from notifier.errors import PermanentProviderError, ProviderError, TransientProviderError
from notifier.patches.flask_mail_timeout import TimedConnection
from notifier.providers.base import MessageRef, OutgoingMail
from notifier.providers.dkim import DkimSigner
from notifier.providers.mime import Wire, build_wire
from notifier.providers.signed_http import operator_error
from notifier.settings import Settings, VendorSettings, text, this_machine

log = logging.getLogger(__name__)


class SmtpSettings(VendorSettings):
    """``NOTIFIER_MAIL_*``: Flask-Mail's settings, plus the timeout and the pool it lacks."""

    prefix: ClassVar[str] = "mail"

    server: str = "localhost"
    port: int = Field(default=25, ge=1, le=65535)
    username: str | None = None
    password: SecretStr | None = None
    use_tls: bool = False
    use_ssl: bool = False
    # Seconds one mail's conversation may take in all (connecting, TLS, login, the transaction).
    timeout: float = Field(default=10.0, gt=0)
    # SMTP connections one worker process keeps (unset: one per worker thread, at most 32), and how
    # long an unused one stays open before it is closed (servers drop idle clients after a while).
    max_connections: int | None = Field(default=None, ge=1, le=1000)
    idle_timeout: float = Field(default=30.0, gt=0)

    @model_validator(mode="after")
    def _one_kind_of_tls(self) -> SmtpSettings:
        if self.use_tls and self.use_ssl:
            raise ValueError("NOTIFIER_MAIL_USE_TLS: cannot be combined with NOTIFIER_MAIL_USE_SSL")
        return self

    def check(self, settings: Settings) -> None:
        """In production a login goes over TLS, unless the relay is on this machine: smtplib
        sends the password as it is, base64 but no secret, over a plain connection."""
        super().check(settings)
        plain = self.username and not (self.use_tls or self.use_ssl)
        used = "smtp" in settings.providers_listed
        production = settings.env.value == "production"
        if production and used and plain and not this_machine(self.server):
            raise ValueError(
                "NOTIFIER_MAIL_USE_TLS: a login (NOTIFIER_MAIL_USERNAME) to a relay off this "
                "machine goes over TLS in production (NOTIFIER_MAIL_USE_TLS or _USE_SSL)"
            )


class _Pool:
    """A bounded set of open SMTP connections, shared by a worker's threads.

    A thread checks a connection out for one mail and gives it back; the most recently used
    goes out first, so a quiet period lets the rest go idle, and one idle past ``idle_timeout``
    is closed (servers drop idle clients; a reaper thread says QUIT before they do). At most
    ``size`` are open at once: a thread that finds none free waits for one, up to ``wait``.
    """

    def __init__(self, opener: Callable[[], smtplib.SMTP], size: int, idle_timeout: float) -> None:
        self._open = opener
        self._slots = threading.BoundedSemaphore(size)
        self._idle: list[tuple[smtplib.SMTP, float]] = []  # (connection, when it was last used)
        self._idle_timeout = idle_timeout
        self._lock = threading.Lock()
        self._reaper: threading.Thread | None = None
        self._closing = threading.Event()
        self.opened = 0

    def acquire(self, wait: float) -> bool:
        """Take a slot (a connection may be open for it); False if none came free in time."""
        return self._slots.acquire(timeout=wait)

    def release(self) -> None:
        self._slots.release()

    def take(self) -> tuple[smtplib.SMTP, bool]:
        """A connection for a slot just acquired, and whether it was open already."""
        with self._lock:
            while self._idle:
                host, used = self._idle.pop()
                if time.monotonic() - used < self._idle_timeout:
                    return host, True
                _quit(host)
        host = self._open()
        with self._lock:
            self.opened += 1
        return host, False

    def open_new(self) -> smtplib.SMTP:
        """A fresh connection, in place of one that went stale."""
        host = self._open()
        with self._lock:
            self.opened += 1
        return host

    def give_back(self, host: smtplib.SMTP) -> None:
        """Keep a healthy connection for the next mail."""
        with self._lock:
            self._idle.append((host, time.monotonic()))
            if self._reaper is None or not self._reaper.is_alive():
                self._closing.clear()
                self._reaper = threading.Thread(target=self._reap, name="smtp-reaper", daemon=True)
                self._reaper.start()

    def _reap(self) -> None:
        while not self._closing.wait(self._idle_timeout / 2):
            self._close_idle(older_than=self._idle_timeout)

    def _close_idle(self, older_than: float) -> None:
        now = time.monotonic()
        with self._lock:
            stale = [host for host, used in self._idle if now - used >= older_than]
            self._idle = [(host, used) for host, used in self._idle if now - used < older_than]
        for host in stale:
            _quit(host)

    def close(self) -> None:
        """Say QUIT on every idle connection and stop the reaper."""
        self._closing.set()
        self._close_idle(older_than=-1)


class SmtpMailProvider:
    """Deliver over SMTP through a pool of kept connections, one mail per connection at a time."""

    name = "smtp"

    def __init__(
        self, settings: SmtpSettings, *, threads: int = 32, dkim: DkimSigner | None = None
    ) -> None:
        """``threads``: the worker's threads, a connection each unless ``max_connections`` says
        (at most 32: 32 kept connections carry ~400 mails a second through a relay 20 ms away,
        more than one process's core sends; relays cap each client's). ``dkim``: signs each
        mail with its From domain's key."""
        mail = Mail().init_mail(
            {
                "MAIL_SERVER": settings.server,
                "MAIL_PORT": settings.port,
                "MAIL_USERNAME": settings.username,
                "MAIL_PASSWORD": text(settings.password) or None,
                "MAIL_USE_TLS": settings.use_tls,
                "MAIL_USE_SSL": settings.use_ssl,
                "MAIL_SUPPRESS_SEND": False,
            }
        )
        self._timeout = settings.timeout
        self._peer: dict[str, str | int] = {
            "server.address": settings.server,
            "server.port": settings.port,
        }
        self._dkim = dkim
        self._pool = _Pool(
            lambda: TimedConnection(mail, settings.timeout).configure_host(),
            size=settings.max_connections or min(threads, 32),
            idle_timeout=settings.idle_timeout,
        )

    @property
    def connections_opened(self) -> int:
        """How many SMTP connections this provider has opened."""
        return self._pool.opened

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Send one mail on a pooled connection; one that went stale while idle is replaced once."""
        wire = build_wire(message, self._dkim)
        if not self._pool.acquire(wait=self._timeout):
            raise TransientProviderError(
                f"no SMTP connection came free within {self._timeout:g} s", provider=self.name
            )
        # The SMTP transaction, a reconnect included, as one span (traces, when on), within
        # one deadline: ``timeout`` seconds in all, however slowly the server answers.
        with (
            tracing.span(
                "smtp send", {**self._peer, "notifier.recipients": len(message.recipients)}
            ),
            Deadline(self._timeout) as deadline,
        ):
            host: smtplib.SMTP | None = None
            try:
                host, reused = self._pool.take()
                if reused and host.sock is not None:
                    watch(host, host.sock, kept=True)
                try:
                    refused = _transmit(host, wire, message)
                except smtplib.SMTPServerDisconnected as e:
                    # A kept connection the server closed while idle fails on its first command,
                    # before the message went out, so one fresh try cannot send it twice. A timeout
                    # can come after the message went out (a slow answer to the final dot): that
                    # one waits for the task's backoff like any other transient failure.
                    if not reused or deadline.expired or isinstance(e.__context__, TimeoutError):
                        raise
                    log.info("smtp connection went stale; reconnecting")
                    _drop(host)
                    host = None
                    host = self._pool.open_new()
                    refused = _transmit(host, wire, message)
            except Exception as e:
                if host is not None and (deadline.expired or not _still_fit(e)):
                    _drop(host)
                    host = None
                error = (
                    TransientProviderError(
                        f"the SMTP server took more than {self._timeout:g} s in all",
                        provider=self.name,
                    )
                    if deadline.expired
                    else self._translated(e)
                )
                if error is e:
                    raise
                raise error from e
            except BaseException:
                # Cut off mid-conversation (the watchdog): the connection's state is unknown.
                if host is not None:
                    _drop(host)
                    host = None
                raise
            finally:
                if host is not None:
                    self._pool.give_back(host)
                self._pool.release()
        if refused:
            log.warning("smtp refused %d of %d recipients", len(refused), len(message.recipients))
            replies = {a: f"{code} {_decoded(text)}" for a, (code, text) in refused.items()}
            return MessageRef(wire.message_id, replies)
        return wire.message_id

    def _translated(self, e: Exception) -> Exception:
        """Our provider error for an SMTP or network error; anything else as it is."""
        if isinstance(e, smtplib.SMTPNotSupportedError):
            # An address that is not ASCII, and a server without SMTPUTF8: smtplib refuses
            # before MAIL FROM is sent, the connection stays good, and no retry can help.
            return PermanentProviderError(
                f"the SMTP server does not take SMTPUTF8, which a recipient needs: {e}",
                provider=self.name,
            )
        if isinstance(e, smtplib.SMTPServerDisconnected):
            return TransientProviderError(f"SMTP connection lost: {e}", provider=self.name)
        if isinstance(e, smtplib.SMTPRecipientsRefused):
            code, reply = min(e.recipients.values())
            text = _decoded(reply)
            return self._sorted(code, text, f"SMTP {code}: {text} (all recipients refused)")
        if isinstance(e, smtplib.SMTPResponseException):
            if not _still_fit(e):
                # The server is closing, or refuses our login: the operator's to fix, and
                # the mail waits for it rather than failing.
                return TransientProviderError(_describe(e), provider=self.name)
            text = _decoded(e.smtp_error)
            if e.smtp_code >= 500 and isinstance(
                e, (smtplib.SMTPSenderRefused, smtplib.SMTPHeloError)
            ):
                # MAIL FROM or EHLO refused: our sender or our host, not the recipient (553
                # 5.7.1 "Sender address not verified", 530 5.7.0 "Authentication required"),
                # but for a message too large for the server (552, 5.3.4, said at MAIL FROM
                # when the server takes SIZE=), which no retry can send.
                if e.smtp_code == 552 or "5.3.4" in text:
                    return PermanentProviderError(_describe(e), provider=self.name)
                return operator_error(self.name, str(e.smtp_code), text)
            return self._sorted(e.smtp_code, text, _describe(e))
        if isinstance(e, (smtplib.SMTPException, OSError)):
            return TransientProviderError(
                f"SMTP connection failed: {type(e).__name__}: {e}", provider=self.name
            )
        return e

    def _sorted(self, code: int, text: str, error: str) -> ProviderError:
        """A refusal at RCPT or DATA: 4xx transient; 5xx the recipient's or the content's
        (permanent, no failover), unless it speaks of our account (``ACCOUNT_REFUSED``: the
        operator's, logged at ERROR, and the next provider's turn)."""
        if code < 500:
            return TransientProviderError(error, provider=self.name)
        if SENDER_STATUS.search(text) or (
            ACCOUNT_REFUSED.search(text) and not RECIPIENTS_CODE.search(text)
        ):
            return operator_error(self.name, str(code), text)
        return PermanentProviderError(error, provider=self.name)

    def close(self) -> None:
        """Say QUIT and close the kept connections."""
        self._pool.close()


def _transmit(
    host: smtplib.SMTP, wire: Wire, message: OutgoingMail
) -> dict[str, tuple[int, bytes]]:
    """One mail transaction on ``host``; the recipients the server refused."""
    sender = message.envelope_from or message.sender
    return host.sendmail(sender, list(message.recipients), wire.data, wire.mail_options)


def _still_fit(e: Exception) -> bool:
    """After ``e``, may the connection carry the next mail? (smtplib reset the transaction.)"""
    if isinstance(e, (smtplib.SMTPRecipientsRefused, smtplib.SMTPNotSupportedError)):
        return True
    return (
        isinstance(e, smtplib.SMTPResponseException)
        and e.smtp_code != 421
        and not isinstance(e, smtplib.SMTPAuthenticationError)
    )


def _drop(host: smtplib.SMTP) -> None:
    let_go(host)
    with contextlib.suppress(OSError):
        host.close()


def _quit(host: smtplib.SMTP) -> None:
    """Say QUIT, within the connection's timeout in all (a reaper or a shutdown waits on it)."""
    try:
        with Deadline(host.timeout):
            if host.sock is not None:
                watch(host, host.sock, kept=True)
            host.quit()
    except (smtplib.SMTPException, OSError):
        _drop(host)
    finally:
        let_go(host)


# What a relay says, at RCPT or DATA, of our account or its configuration rather than of the
# recipient or the content (the contract: "an unverified sender", "sending paused"... fail over):
# SES's SMTP interface ("554 Message rejected: Email address is not verified", "Sending paused
# for this account"), SendGrid's ("550 The from address does not match a verified Sender
# Identity"), Postmark's ("Sender signature not defined"), a relay that will not relay for us
# (Postfix's "554 5.7.1 <...>: Relay access denied"), a suspended account or a spent quota.
ACCOUNT_REFUSED = re.compile(
    r"not verified|verified sender|sender identity|sender signature|sending paused"
    r"|account (is )?suspended|sending quota|daily (message |sending )?quota|not allowed to send"
    r"|relay(ing)? (access )?(denied|not permitted)",
    re.IGNORECASE,
)
# An enhanced status code about the address or the mailbox (X.1.x, X.2.x: RFC 3463): the
# recipient's, whatever else the text says ("552 5.2.2 ... over quota", "550 5.2.1 Mailbox
# suspended").
RECIPIENTS_CODE = re.compile(r"\b5\.[12]\.\d{1,3}\b")
# RFC 3463's statuses about the sender, not the recipient, though they are X.1.x: X.1.7 (bad
# sender's mailbox address syntax) and X.1.8 (bad sender's system address): "550 5.1.8 Access
# denied, bad outbound sender" (Microsoft 365), "553 5.1.8 Domain of sender address does not
# exist" (our bounce domain missing from DNS). The operator's, never the recipient's: said at
# RCPT or DATA it fails over, in a DSN it suppresses nobody (services/bounces.py).
SENDER_STATUS = re.compile(r"\b5\.1\.[78]\b")
# RFC 3463's statuses that say the address is bad: X.1.x (addressing), X.2.1 (mailbox
# disabled); but X.1.7 and X.1.8 are about our sender (SENDER_STATUS).
ADDRESS_STATUS = re.compile(r"5\.(1\.\d+|2\.1)")
# An enhanced status code in a reply's text ("550 5.1.1 <ada@…>: user unknown").
ENHANCED_STATUS = re.compile(r"\b[245]\.\d{1,3}\.\d{1,3}\b")


def bad_address(status: str) -> bool:
    """Whether an enhanced status (``5.1.1``) says the recipient's address is bad: suppress it
    (a DSN's hard bounce, a relay's refusal at RCPT)."""
    return bool(ADDRESS_STATUS.fullmatch(status)) and not SENDER_STATUS.search(status)


def _decoded(reply: bytes | str) -> str:
    """A server's reply text (smtplib keeps it as the bytes that came)."""
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)


def _describe(e: smtplib.SMTPResponseException) -> str:
    return f"SMTP {e.smtp_code}: {_decoded(e.smtp_error)}"

"""Flask-Mail's SMTP connection, opened with a timeout, its socket under the call's deadline.

Why: Flask-Mail opens ``smtplib.SMTP`` without one, so a silent server would hang a worker
thread for good; and smtplib's timeout is the socket's, one operation at a time, so a server
that trickles its greeting or a reply (a byte a second, a multi-line reply without end) would
hold the thread all the same. Its socket is put under the current
:class:`~notifier.deadline.Deadline` as soon as it is connected, before the greeting is read.

- Touches: ``flask_mail.Connection.configure_host`` (overridden: redone with a timeout and the
  watched SMTP classes below, and without Flask-Mail's ``set_debuglevel``: ``MAIL_DEBUG`` is no
  setting of ours), relying on ``Connection.__init__`` (it keeps ``mail``) and on the settings
  ``Mail.init_mail`` keeps. And smtplib's ``SMTP._get_socket`` (extended: the socket it
  returns is watched), the seam ``SMTP_SSL`` and ``LMTP`` override in the standard library
  itself; ``SMTP.connect`` reads the greeting right after it, and ``SMTP_SSL._get_socket`` wraps
  what it returns (so the TLS handshake is under the deadline too).
- Checked with: flask-mail 0.10.0; smtplib of Python 3.11 to 3.13 (the same ``_get_socket``).
- Upstream: https://github.com/pallets-eco/flask-mail/issues/114 (open: "Lack of timeout on
  send"; its ``MAIL_TIMEOUT`` pull request, 140, was closed unmerged). smtplib has no timeout
  for a whole command, and none is asked for upstream: a deadline is the caller's.
- Canary: ``tests/unit/test_patches.py``: the source of each Flask-Mail symbol as checked, and
  the settings a connection reads are where it reads them; ``tests/unit/test_deadline.py``: a
  greeting and a reply that trickle are cut at the deadline (smtplib's source is the running
  Python's, so it is held by what it does rather than by a hash).
"""

from __future__ import annotations

import smtplib
import socket
from typing import Any

from flask_mail import Connection

from notifier.deadline import watch


class WatchedSMTP(smtplib.SMTP):
    """smtplib's SMTP with its socket under the current deadline from the moment it connects."""

    def _get_socket(self, host: str, port: int, timeout: float) -> socket.socket:
        sock: socket.socket = super()._get_socket(host, port, timeout)  # type: ignore[misc]
        watch(self, sock)
        return sock


class WatchedSMTPSSL(smtplib.SMTP_SSL, WatchedSMTP):
    """SMTP over TLS, its plain socket watched before the handshake (SMTP_SSL's ``_get_socket``
    wraps what :class:`WatchedSMTP`'s returns)."""


class TimedConnection(Connection):
    """Flask-Mail's connection, opened with a timeout on every socket operation."""

    def __init__(self, mail: Any, timeout: float) -> None:
        super().__init__(mail)
        self.timeout = timeout

    def configure_host(self) -> smtplib.SMTP:
        # Flask-Mail opens smtplib.SMTP without a timeout: a silent server would hang the worker.
        cls = WatchedSMTPSSL if self.mail.use_ssl else WatchedSMTP
        host = cls(self.mail.server, self.mail.port, timeout=self.timeout)
        if self.mail.use_tls:
            host.starttls()
        if self.mail.username and self.mail.password:
            host.login(self.mail.username, self.mail.password)
        return host

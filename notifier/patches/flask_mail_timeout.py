"""Flask-Mail's SMTP connection, opened with a timeout."""

from __future__ import annotations

import smtplib
from typing import Any

from flask_mail import Connection


class TimedConnection(Connection):
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

"""Flask-Mail's SMTP connection, opened with a timeout.

Why: Flask-Mail opens ``smtplib.SMTP`` without one, so a silent server would hang a worker
thread for good.

- Touches: ``flask_mail.Connection.configure_host`` (overridden: redone with a timeout, and
  without Flask-Mail's ``set_debuglevel``: ``MAIL_DEBUG`` is no setting of ours), relying on
  ``Connection.__init__`` (it keeps ``mail``) and on the settings ``Mail.init_mail`` keeps.
- Checked with: flask-mail 0.10.0.
- Upstream: https://github.com/pallets-eco/flask-mail/issues/114 (open: "Lack of timeout on
  send"; its ``MAIL_TIMEOUT`` pull request, 140, was closed unmerged).
- Canary: ``tests/unit/test_patches.py``: the source of each symbol as checked, and the
  settings a connection reads are where it reads them.
"""

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

"""The operator console, ``/console``: server-rendered pages for the people who run Notifier.

On when ``NOTIFIER_CONSOLE_USERS`` names an operator (development makes one); otherwise
``/console`` answers 404 with a page that says how to turn it on. What it shows and how it is
kept safe: docs/console.md. :mod:`.auth` holds the login, sessions and CSRF; :mod:`.views` the
pages; :mod:`.figures` what the overview and clients pages count; :mod:`.charts` the SVG.
"""

from __future__ import annotations

import hashlib
import hmac

from flask import Flask

from notifier.console.auth import LoginLimit, Operators, Sealed, Sessions
from notifier.console.views import Console, bp, off
from notifier.settings import ConsoleUser


def register(app: Flask, users: list[ConsoleUser], secret: bytes) -> None:
    """Serve the console on ``app`` for ``users`` (none: the page saying it is off).
    ``secret`` keys what the console seals (a recipient searched for, in its URLs)."""
    from notifier.runtime import Runtime

    rt: Runtime = app.extensions["notifier"]
    if not users:
        for rule in ("/console", "/console/", "/console/<path:rest>"):
            app.add_url_rule(rule, "console_off", off)
        return
    app.extensions["console"] = Console(
        operators=Operators(users),
        sessions=Sessions(rt.redis),
        limit=LoginLimit(rt.redis),
        sealed=Sealed(hmac.new(secret, b"console", hashlib.sha256).digest()),
        trusted_proxies=rt.settings.console_trusted_proxies,
    )
    app.register_blueprint(bp)

"""The HTTP API: blueprints and the one error handler."""

from __future__ import annotations

from flask import Flask

from notifier.api import (
    batches,
    captcha,
    health,
    mail,
    meta,
    notifications,
    observe,
    problems,
    receipts,
    replicated,
    sms,
    suppressions,
    unsubscribe,
    uploads,
)


def register(app: Flask) -> None:
    """Attach every route and the problem+json error handler to ``app``."""
    problems.register(app)
    observe.register(app)
    # After observe: its after_request runs last, so it logs and counts the answer sent.
    replicated.register(app)
    app.register_blueprint(health.bp)
    app.register_blueprint(meta.bp)
    app.register_blueprint(mail.bp, url_prefix="/v1")
    app.register_blueprint(batches.bp, url_prefix="/v1")
    app.register_blueprint(notifications.bp, url_prefix="/v1")
    app.register_blueprint(captcha.bp, url_prefix="/v1")
    app.register_blueprint(sms.bp, url_prefix="/v1")
    app.register_blueprint(uploads.bp, url_prefix="/v1")
    app.register_blueprint(receipts.bp, url_prefix="/v1")
    app.register_blueprint(suppressions.bp, url_prefix="/v1")
    app.register_blueprint(unsubscribe.bp, url_prefix="/v1")

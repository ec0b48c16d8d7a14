"""The HTTP API: blueprints and the one error handler."""

from __future__ import annotations

from flask import Flask, Response, request

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
    app.after_request(_bare_options)
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


def _bare_options(response: Response) -> Response:
    """Flask answers OPTIONS itself (the route's methods in ``Allow``) with an empty 200 that
    says it is HTML: a 204 says the same with no body and claims nothing."""
    if request.method == "OPTIONS" and response.status_code == 200 and not response.get_data():
        response.status_code = 204
        del response.headers["Content-Type"]
    return response

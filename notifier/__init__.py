"""Notifier: mail, SMS captchas and upload tokens for other services, over HTTP and Celery."""

from __future__ import annotations

import logging
import sys

from flask import Flask

from notifier.settings import ConfigError, Environment, Settings, load_settings

# The providers for development: they print messages (codes included) or keep them.
DEV = frozenset({"console", "outbox"})  # (the tests' `memory` stops a production start)
log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None, *, serve: bool = True) -> Flask:
    """Build the Flask app, its Celery app and its runtime.

    Without ``settings`` they are read from the environment, and a bad one ends the process
    with one line naming the variable. ``serve``: the app answers HTTP (the API's routes and
    the console); the worker and beat build it without them (``celery_app``), which saves
    them loading what only the web uses.
    """
    if settings is not None:
        return _build(settings, serve)
    try:
        return _build(load_settings(), serve)
    except ConfigError as e:
        print(f"notifier: configuration error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _build(settings: Settings, serve: bool) -> Flask:
    # Imported here so that `config` errors are reported before anything else is loaded.
    from notifier import logs, tasks  # noqa: F401 (importing tasks registers them)
    from notifier.celery_ext import celery_config, celery_init_app
    from notifier.embedded import fill_in
    from notifier.providers.registry import mail_factories, sms_factories
    from notifier.runtime import Runtime

    logs.configure(settings.log_level, settings.log_format)
    if settings.sentry_dsn is not None:
        from notifier import sentry  # imported only when on: the SDK costs start-up time

        sentry.start(settings)
    filled = fill_in(settings)
    if settings.env is Environment.PRODUCTION and (listed := settings.providers_listed & DEV):
        # Allowed (the contract asks only that the SMS providers be set), never quiet: these
        # print codes and mail to stdout, or keep mail on disk.
        log.warning(
            "production with development providers %s: they print or keep messages, codes "
            "included, instead of sending them",
            ", ".join(sorted(listed)),
        )
    if filled.development_key is not None:
        # Development without NOTIFIER_API_KEYS: one key, printed at start-up (the contract), by
        # the web (gunicorn's master, once), never logged. `notifier run` prints it itself and
        # hands its processes the key's client, so none of them comes here.
        kept = settings.state_dir / "dev-api-key"
        if serve:
            print(f"development API key: {filled.development_key} (kept in {kept})",
                  file=sys.stderr, flush=True)  # fmt: skip
        else:
            log.info("development API key (all scopes) in %s", kept)

    app = Flask("notifier")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["notifier"] = Runtime(
        settings=settings,
        redis_url=filled.redis_url,
        clients={c.key_sha256: c for c in filled.clients},
        mail_factories=mail_factories(settings),
        sms_factories=sms_factories(settings),
        captcha_secret=filled.captcha_secret.encode(),
        celery=celery_init_app(app, celery_config(settings, filled.redis_url)),
    )
    if serve:
        from notifier import api, console

        api.register(app)
        console.register(app, filled.console_users, filled.captcha_secret.encode())
    return app

"""Notifier: mail, SMS captchas and upload tokens for other services, over HTTP and Celery."""

from __future__ import annotations

import logging
import secrets
import sys
from itertools import chain

from flask import Flask

from config import ConfigError, Environment, Settings, load_settings

log = logging.getLogger(__name__)


def create_app(settings: Settings | None = None) -> Flask:
    """Build the Flask app, its Celery app and its runtime.

    Without ``settings`` they are read from the environment, and a bad one ends the process
    with one line naming the variable.
    """
    if settings is not None:
        return _build(settings)
    try:
        return _build(load_settings())
    except ConfigError as e:
        print(f"notifier: configuration error: {e}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None


def _build(settings: Settings) -> Flask:
    # Imported here so that `config` errors are reported before anything else is loaded.
    from notifier import api, logs, tasks
    from notifier.celery_ext import celery_config, celery_init_app
    from notifier.embedded import development_key, ensure_redis, kept_secret
    from notifier.providers.registry import mail_factory, sms_factories
    from notifier.runtime import Runtime

    logs.configure(settings.log_level, settings.log_format or "json")
    development = settings.env is Environment.DEVELOPMENT
    redis_url = settings.redis_url
    if redis_url is None:
        if not development:
            raise ConfigError(f"NOTIFIER_REDIS_URL: required in {settings.env.value}")
        redis_url = ensure_redis(settings.state_dir)
    clients = settings.api_keys
    if clients is None:
        if not development:
            raise ConfigError(f"NOTIFIER_API_KEYS: required in {settings.env.value}")
        _, client = development_key(settings.state_dir)
        # The key itself is printed by `notifier run`, never logged.
        log.info("development API key (all scopes) in %s", settings.state_dir / "dev-api-key")
        clients = [client]
    # Production must set the captcha secret (the settings' validator says so); elsewhere one
    # is made once and kept in the state folder, the same for every process.
    secret = (
        settings.captcha_secret.get_secret_value()
        if settings.captcha_secret
        else kept_secret(settings.state_dir, "captcha-secret", lambda: secrets.token_hex(32))
    )
    # The settings' validator gives both a default outside production and requires them in it.
    assert settings.mail_provider is not None and settings.sms_providers is not None

    app = Flask("notifier")
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_size
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.extensions["notifier"] = Runtime(
        settings=settings,
        redis_url=redis_url,
        clients={c.key_sha256: c for c in clients},
        mail_factory=mail_factory(settings.mail_provider),
        sms_factories=sms_factories(
            dict.fromkeys(
                [*settings.sms_providers, *chain(*settings.sms_country_providers.values())]
            )
        ),
        captcha_secret=secret.encode(),
        celery=celery_init_app(app, celery_config(settings, redis_url)),
    )
    assert tasks  # registered on import
    api.register(app)
    return app

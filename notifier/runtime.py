"""The objects one process shares: settings, the Redis client, the store, the providers."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import redis
from flask import current_app
from redis.backoff import NoBackoff
from redis.retry import Retry

from config import ApiClient, Settings
from notifier.providers.base import MailProvider
from notifier.providers.registry import MailFactory
from notifier.store import NotificationStore
from notifier.templating import MailTemplates


def redis_client(url: str) -> redis.Redis:
    """A Redis client that gives up in seconds, so the web answers 503 instead of hanging."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_connect_timeout=2,
        socket_timeout=5,
        health_check_interval=30,
        retry=Retry(NoBackoff(), 1),
    )


@dataclass
class Runtime:
    """Built once by ``create_app``; found with :func:`runtime`."""

    settings: Settings
    redis_url: str
    clients: dict[str, ApiClient]  # by the SHA-256 of their key
    mail_factory: MailFactory
    redis: redis.Redis = field(init=False)
    store: NotificationStore = field(init=False)
    templates: MailTemplates = field(default_factory=MailTemplates)
    _mail: tuple[int, MailProvider] | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.redis = redis_client(self.redis_url)
        self.store = NotificationStore(self.redis, ttl=self.settings.status_ttl)

    @property
    def mail_provider(self) -> MailProvider:
        """This process's mail provider, made on first use after any fork (sockets are not shared)."""
        if self._mail is None or self._mail[0] != os.getpid():
            self._mail = (os.getpid(), self.mail_factory(self.settings))
        return self._mail[1]

    def close(self) -> None:
        """Release the provider's connections (a worker process is shutting down)."""
        if self._mail is not None and self._mail[0] == os.getpid():
            self._mail[1].close()


def runtime() -> Runtime:
    """The current Flask app's runtime."""
    found: Runtime = current_app.extensions["notifier"]
    return found

"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from tests.support.harness.clients import COS, OSS, QINIU, S3, api_clients, gcs_settings
from tests.support.peers import system
from tests.support.peers.redis_server import RedisServer


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what collection made (the test modules, the package, their libraries: most of the
    heap, kept to the end) out of every later garbage collection, as the service's processes do
    once up (notifier/celery_ext.py): each full collection a test's garbage set off walked all of
    it, about a tenth of the unit tests' CPU."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell the peers the test's markers, before its fixtures start any: the system packages it
    may run (tests/support/peers/system.py)."""
    system.marks = {mark.name for mark in item.iter_markers()}


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test run's own, for the whole session."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fillable() -> Iterator[RedisServer]:
    """A Redis server of the test module's own, to fill (``fill``, ``free``) while the session's
    serves the other tests; each test leaves it with room again."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Any) -> Callable[..., Settings]:
    """Build testing Settings on database 1 of the session's Redis (emptied first)."""
    import redis

    redis.Redis.from_url(redis_server.url(1)).flushdb()

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "testing",
            "redis_url": redis_server.url(1),
            "api_keys": api_clients(),
            "mail_provider": "memory",
            "mail_default_sender": "Notifier <noreply@example.com>",
            "outbox_dir": tmp_path / "outbox",
            "state_dir": tmp_path / "state",
            **QINIU,
            **S3,
            **OSS,
            **COS,
            **gcs_settings(tmp_path),
        }
        if "mail_providers" in overrides:
            del values["mail_provider"]  # one or the other
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """The app on the test Redis with the in-memory mail provider."""
    return create_app(make_settings())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A Flask test client of ``app``."""
    return app.test_client()

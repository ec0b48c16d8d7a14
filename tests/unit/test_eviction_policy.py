"""The start-up check of Redis's maxmemory-policy: a Redis that evicts when full drops accepted
notifications without a word (issue 35: 33 of 55 mails under allkeys-lru), so a production start
refuses it and any other warns. Real servers, each set up as the test says."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator

import pytest

from config import ConfigError, Settings
from notifier import create_app
from notifier.embedded import free_port
from tests.support.peers.redis_server import RedisServer

EVICTS = "NOTIFIER_REDIS_URL: Redis's maxmemory-policy is volatile-lru; it must be noeviction"
PRODUCTION = {
    "env": "production", "sms_providers": "console", "mail_provider": "outbox",
    "captcha_secret": "0" * 20,
    "s3_endpoint_url": "https://s3.example.com", "oss_endpoint": "https://oss.example.com",
    "cos_endpoint": "https://cos.example.com",
}  # fmt: skip


def started(*args: str, persistent: bool = False) -> Iterator[RedisServer]:
    server = RedisServer(persistent=persistent, args=args)
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def evicting() -> Iterator[RedisServer]:
    """volatile-lru: the default of some managed Redis, and our records all have a TTL."""
    yield from started("--maxmemory-policy", "volatile-lru")


@pytest.fixture(scope="module")
def silent() -> Iterator[RedisServer]:
    """A Redis that tells its policy neither by CONFIG nor by INFO."""
    yield from started("--rename-command", "CONFIG", "", "--rename-command", "INFO", "")


def test_production_refuses_a_redis_that_evicts(
    make_settings: Callable[..., Settings], evicting: RedisServer
) -> None:
    with pytest.raises(ConfigError) as refused:
        create_app(make_settings(redis_url=evicting.url(), **PRODUCTION))
    assert str(refused.value).startswith(EVICTS) and "\n" not in str(refused.value)


def test_elsewhere_a_redis_that_evicts_is_a_warning(
    make_settings: Callable[..., Settings], evicting: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="notifier.runtime"):
        create_app(make_settings(redis_url=evicting.url()))
    assert EVICTS in caplog.text


def test_a_separate_broker_redis_is_checked_too(
    make_settings: Callable[..., Settings], evicting: RedisServer, redis_server: RedisServer
) -> None:
    settings = make_settings(redis_url=redis_server.url(1), broker_url=evicting.url(), **PRODUCTION)
    with pytest.raises(
        ConfigError, match=r"^NOTIFIER_BROKER_URL: Redis's maxmemory-policy is volatile-lru"
    ):
        create_app(settings)


@pytest.mark.parametrize("where", ["silent", "down"])
def test_a_policy_no_one_tells_is_a_warning_even_in_production(
    make_settings: Callable[..., Settings],
    silent: RedisServer,
    caplog: pytest.LogCaptureFixture,
    where: str,
) -> None:
    """Neither CONFIG nor INFO (a locked-down managed Redis), or no answer at start-up: nothing
    says the policy is wrong, and refusing would stop a service for want of a word."""
    url = silent.url() if where == "silent" else f"redis://127.0.0.1:{free_port()}/0"
    with caplog.at_level(logging.WARNING, logger="notifier.runtime"):
        create_app(make_settings(redis_url=url, **PRODUCTION))
    said = {
        "silent": "shows its maxmemory-policy neither by CONFIG GET nor by INFO",
        "down": "could not check maxmemory-policy, Redis did not answer",
    }
    assert said[where] in caplog.text


@pytest.mark.parametrize("persistent", [False, True])
def test_a_production_redis_that_keeps_nothing_on_disk_is_a_warning(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture, persistent: bool
) -> None:
    """No AOF and no save rule: a restart loses every notification it holds (not refused: a
    managed Redis or replicas may keep them another way)."""
    for server in started(persistent=persistent):
        with caplog.at_level(logging.WARNING, logger="notifier.runtime"):
            create_app(make_settings(redis_url=server.url(), **PRODUCTION))
            create_app(make_settings(redis_url=server.url()))  # development: not said
    said = caplog.text.count("NOTIFIER_REDIS_URL: Redis keeps nothing on disk")
    assert said == (0 if persistent else 1)

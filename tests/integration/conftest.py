"""The real stack: our Redis, an aiosmtpd server, gunicorn, a celery worker and beat."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.redis_server import RedisServer
from tests.support.smtp import SmtpSink
from tests.support.stack import Stack, stack_settings, start_stack
from tests.support.twilio import FakeTwilio


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpSink]:
    """A recording SMTP server for the whole session."""
    sink = SmtpSink()
    sink.start()
    yield sink
    sink.stop()


@pytest.fixture(scope="session")
def twilio() -> Iterator[FakeTwilio]:
    """A local server in Twilio's REST format for the whole session."""
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="session")
def stack(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Web, worker and beat as the Procfile starts them, on the session's Redis and peers."""
    state = tmp_path_factory.mktemp("state")
    running = start_stack(stack_settings(redis_server, smtp, twilio, state), smtp, twilio)
    yield running
    running.stop()

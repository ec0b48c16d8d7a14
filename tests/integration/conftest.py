"""The real stack: our Redis, an aiosmtpd server, gunicorn, a celery worker and beat."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import pytest
from celery import Celery

from tests.support.harness.callbacks import callbacks_stack
from tests.support.harness.clients import bucket
from tests.support.harness.events import events_stack
from tests.support.harness.sms import texting_stack
from tests.support.harness.stack import Stack, stack_settings, start_stack
from tests.support.peers.chromium import Page
from tests.support.peers.cos import FakeCos
from tests.support.peers.oss import FakeOss
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.s3 import FakeS3
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

T = TypeVar("T")
Starter = Callable[[RedisServer, SmtpSink, FakeTwilio, Path], AbstractContextManager[T]]


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
def s3() -> Iterator[FakeS3]:
    """A local S3 that checks form uploads' policies and signatures, for the whole session; its
    buckets are the test clients' (tests/support/harness/clients.py)."""
    server = FakeS3(("avatars", "invoices")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def oss() -> Iterator[FakeOss]:
    """A local Aliyun OSS that checks PostObject forms' V4 signatures and policies, for the
    whole session; its buckets are the test clients'."""
    server = FakeOss(("avatars", "invoices")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cos() -> Iterator[FakeCos]:
    """A local Tencent COS that checks POST Object forms' signatures and policies, for the whole
    session; its buckets are the test clients', named with the APPID as COS names them."""
    server = FakeCos((bucket("cos"), bucket("cos", "invoices"))).start()
    yield server
    server.stop()


def session_stack(name: str, start: Starter[T]) -> Any:
    """A fixture ``name`` of the session: the stack ``start`` starts on the session's Redis and
    peers (and a folder of its own), stopped as the session ends. The modules that use it go to
    one test worker (tests/conftest.py's ``SHARED_STACKS``), which starts it once."""

    @pytest.fixture(scope="session", name=name)
    def started(
        redis_server: RedisServer,
        smtp: SmtpSink,
        twilio: FakeTwilio,
        tmp_path_factory: pytest.TempPathFactory,
    ) -> Iterator[T]:
        with start(redis_server, smtp, twilio, tmp_path_factory.mktemp(name)) as running:
            yield running

    return started


# The stack that texts +86 through Aliyun, then Tencent, the rest through Twilio, with a public
# URL and named SMS (tests/support/harness/sms.py): test_sms_notifications, test_cn_sms and
# test_unsubscribe.
texting = session_stack("texting", texting_stack)
# The stack with a public URL and two clients whose callbacks go to receivers, one of them a
# test key's (tests/support/harness/callbacks.py): test_receipts_callbacks and test_test_keys.
callbacks = session_stack("callbacks", callbacks_stack)
# The stack whose mail goes to the local SES, then SendGrid, then SMTP, both providers' events
# coming back signed (tests/support/harness/events.py), on database 12 of the session's Redis:
# test_mail_events and test_redis_holds_no_recipient (test_bounce_guard has one of its own).
events = session_stack(
    "events",
    lambda redis_server, smtp, twilio, folder: events_stack(redis_server, smtp, twilio, folder, 12),
)


@pytest.fixture(scope="session")
def stack(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    s3: FakeS3,
    oss: FakeOss,
    cos: FakeCos,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Web, worker and beat as the Procfile starts them, on the session's Redis and peers."""
    state = tmp_path_factory.mktemp("state")
    settings = stack_settings(redis_server, smtp, twilio, state)
    settings["s3_endpoint_url"] = s3.url
    settings["oss_endpoint"] = oss.url
    settings["cos_endpoint"] = cos.url
    running = start_stack(settings, smtp, twilio)
    yield running
    running.stop()


@pytest.fixture
def caller(stack: Stack) -> Iterator[Celery]:
    """A service that calls tasks directly, on the stack's broker and result backend."""
    url = stack.env["NOTIFIER_REDIS_URL"]
    app = Celery("caller", broker=url, backend=url)
    yield app
    app.close()


@pytest.fixture
def page(tmp_path: Path) -> Iterator[Page]:
    """A tab of a headless Chromium of this test's own (the tests that use it are marked
    ``browser``)."""
    opened = Page(tmp_path / "profile")
    yield opened
    opened.close()

"""Traces to a local OTLP receiver and errors to a local Sentry, from a real web and worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import redis
import requests

from notifier.stores.batch_counts import scheduled_key
from notifier.stores.notifications import payload_key, record_key
from tests.support.harness.clients import auth
from tests.support.harness.stack import Stack, address, send, stack_settings, start_stack
from tests.support.harness.wait import wait_for
from tests.support.peers.otlp import OtlpReceiver, ReceivedSpan
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.sentry import SentryReceiver
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    """A local OTLP/HTTP trace receiver."""
    receiver = OtlpReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def sentry() -> Iterator[SentryReceiver]:
    """A local Sentry ingestion endpoint."""
    receiver = SentryReceiver().start()
    yield receiver
    receiver.stop()


@pytest.fixture(scope="module")
def observed(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    otlp: OtlpReceiver,
    sentry: SentryReceiver,
    tmp_path_factory: pytest.TempPathFactory,
    monkeypatch_module: pytest.MonkeyPatch,
) -> Iterator[Stack]:
    """A stack whose traces go to ``otlp`` (a short batch delay) and errors to ``sentry``."""
    settings = stack_settings(redis_server, smtp, twilio, Path(tmp_path_factory.mktemp("o")), 7)
    settings["sentry_dsn"] = sentry.dsn
    monkeypatch_module.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.base_url)
    monkeypatch_module.setenv("OTEL_BSP_SCHEDULE_DELAY", "100")
    stack = start_stack(settings, smtp, twilio)
    yield stack
    stack.stop()


@pytest.fixture(scope="module")
def monkeypatch_module() -> Iterator[pytest.MonkeyPatch]:
    """A MonkeyPatch for a module's fixtures."""
    with pytest.MonkeyPatch.context() as patch:
        yield patch


def test_one_trace_runs_from_the_request_through_a_retry_to_the_smtp_answer(
    observed: Stack, otlp: OtlpReceiver
) -> None:
    to = address("traced")
    observed.smtp.plan(to, f"451 4.7.1 <{to}> greylisted, try again later")
    notification_id = send(observed, to=[to], subject="Secret subject 7f3a", text="Body 9c1e")
    status = observed.wait_status(notification_id, "sent")
    assert status["attempts"] == 2

    def trace() -> list[ReceivedSpan]:
        spans = otlp.received()
        web = [s for s in spans if s.service == "notifier-web" and s.name == "POST /v1/mail"]
        if not web:
            return []
        one = [s for s in spans if s.trace_id == web[-1].trace_id]
        sends = [s for s in one if s.name == "smtp send"]
        return one if len(sends) == 2 else []

    spans = wait_for(trace, what="the mail's trace with both SMTP sends")
    by_service = {(s.service, s.name) for s in spans}
    assert ("notifier-worker", "run/send_mail") in by_service
    assert ("notifier-worker", "provider send") in by_service
    failed = [s for s in spans if s.name == "smtp send" and "events" in s.raw]
    assert failed, "the refused attempt's span records its error"
    everything = json.dumps([s.raw for s in otlp.received()])
    key = auth()["Authorization"].split()[1]
    for secret in (to, "Secret subject 7f3a", "Body 9c1e", key):
        assert secret not in everything
    assert "t***@example.com" in everything  # the refusal, quoted in the error, masked
    # Beat's once-a-second dispatch is not traced, nor kombu's polling of the broker.
    assert not {"run/dispatch_due", "BRPOP"} & {s.name for s in otlp.received()}
    # The retry is not an error line (the Celery instrumentation's detach; see tracing.start).
    assert "Failed to detach context" not in observed.worker.output()


def test_an_unhandled_web_error_reaches_sentry_masked(
    observed: Stack, sentry: SentryReceiver
) -> None:
    notification_id = send(observed, to=[address("broken")])
    r = redis.Redis.from_url(observed.env["NOTIFIER_REDIS_URL"], decode_responses=True)
    # A record no release writes: reading it raises an error that quotes the field.
    r.hset(record_key(notification_id), "attempts", "ada@example.com +8613800138000")
    response = requests.get(
        f"{observed.base}/v1/notifications/{notification_id}?code=482913",
        headers=auth(),
        timeout=10,
    )
    assert response.status_code == 500
    event = wait_for(
        lambda: next((e for e in sentry.received() if notification_id in json.dumps(e)), None),
        what="the web's event",
    )
    text = json.dumps(event)
    assert "ValueError" in text and "a***@example.com" in text
    for secret in ("ada@example.com", "8613800138000", "482913", auth()["Authorization"]):
        assert secret not in text


def test_an_unexpected_error_in_a_task_reaches_sentry_masked(
    observed: Stack, sentry: SentryReceiver
) -> None:
    hidden = address("hidden")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    notification_id = send(observed, to=[hidden], send_at=later)
    r = redis.Redis.from_url(observed.env["NOTIFIER_REDIS_URL"], decode_responses=True)
    key = payload_key(notification_id)
    payload = json.loads(r.get(key) or "{}")
    # A lone surrogate cannot be encoded: building the message raises what no provider handles.
    r.set(key, json.dumps({**payload, "subject": f"Hi {hidden} \udcff"}), keepttl=True)
    r.zadd(scheduled_key(notification_id), {notification_id: time.time()})
    event = wait_for(
        lambda: next((e for e in sentry.received() if "UnicodeEncodeError" in json.dumps(e)), None),
        what="the worker's event",
        timeout=30,
    )
    assert notification_id in json.dumps(event)
    assert all(hidden not in body.decode(errors="replace") for body in sentry.bodies)

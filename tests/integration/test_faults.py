"""Fault tests: real processes, real signals. Nothing accepted is lost.

A stack of its own (Redis with an append-only file, an SMTP server, web, worker and beat, as the
Procfile runs them) with a short visibility timeout (10 s), so a dead worker's messages come back
within the test's patience.
"""

from __future__ import annotations

import signal
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from notifier.stores.batches import batch_key
from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.clients import auth
from tests.support.harness.processes import (
    BIN,
    Process,
    notifier_env,
    start_web,
    start_worker,
    stop_all,
)
from tests.support.harness.stack import stack_settings
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

# Every test here breaks something on purpose and waits out the recovery: soak (scripts/test
# --fast leaves them out; the full suite runs them).
pytestmark = [pytest.mark.integration, pytest.mark.soak]


@dataclass
class Faulty:
    """The fault stack; ``worker`` is replaced as tests kill it."""

    redis: RedisServer
    smtp: SmtpSink
    twilio: FakeTwilio
    env: dict[str, str]
    web: Process
    base: str
    worker: Process | None = None
    shape: tuple[int, str | None] = (0, None)
    retired: list[Process] = field(default_factory=list)

    def ensure_worker(self, concurrency: int = 2, queues: str | None = None) -> Process:
        """A live worker with ``concurrency`` threads (started anew if need be), serving
        ``queues`` only if given."""
        wanted = (concurrency, queues)
        if self.worker is not None and (not self.worker.alive() or self.shape != wanted):
            self.worker.stop()
            self.retired.append(self.worker)
            self.worker = None
        if self.worker is None:
            self.worker = start_worker(self.env, concurrency=concurrency, queues=queues)
            self.shape = wanted
        return self.worker

    def without_worker(self) -> None:
        """Stop the worker, if one runs (SIGTERM)."""
        if self.worker is not None:
            self.worker.stop()
            self.retired.append(self.worker)
            self.worker = None

    def kill_worker(self) -> None:
        assert self.worker is not None
        self.worker.stop(signal.SIGKILL)
        self.retired.append(self.worker)
        self.worker = None

    def post_mail(self, to: str, **headers: str) -> requests.Response:
        body = {"to": [to], "subject": "Fault test", "text": "Hello"}
        return requests.post(
            f"{self.base}/v1/mail", json=body, headers={**auth(), **headers}, timeout=30
        )

    def status(self, notification_id: str) -> dict[str, Any]:
        url = f"{self.base}/v1/notifications/{notification_id}"
        found: dict[str, Any] = requests.get(url, headers=auth(), timeout=10).json()
        return found

    def wait_sent(self, ids: list[str], timeout: float = 90) -> None:
        def unsent() -> list[dict[str, Any]]:
            return [s for i in ids if (s := self.status(i))["status"] != "sent"]

        wait_for(
            lambda: not unsent() or None,
            timeout=timeout,
            what=f"{len(ids)} notifications to be sent (unsent: {unsent()[:3]})",
        )

    def created(self, notification_id: str) -> float:
        return datetime.fromisoformat(self.status(notification_id)["created_at"]).timestamp()

    def arrived(self, ids: list[str]) -> int:
        """How many of ``ids`` have arrived: cheap enough to poll without stalling the server.

        (Scanning every message under the server's lock would hold up its answers, and a worker
        killed while the server sits on a 250 it has not written yet sends that mail twice.)
        """
        arrivals = self.smtp.handler.arrivals
        return sum(i in arrivals for i in ids)

    def arrivals(self, notification_id: str) -> int:
        return len(self.smtp.received(notification_id))


@pytest.fixture(scope="module")
def faulty(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faulty]:
    """The fault stack, for this module."""
    redis, smtp, twilio = RedisServer(persistent=True), SmtpSink(), FakeTwilio().start()
    redis.start()
    smtp.start()
    settings = stack_settings(redis, smtp, twilio, Path(tmp_path_factory.mktemp("faults")))
    settings.update(
        broker_visibility_timeout=10,
        retry_max=40,
        retry_base=0.2,
        retry_cap=1,
        captcha_ttl=10,
        rate_limit="1000/s",
    )
    env = notifier_env(settings)
    # Beat puts back what a broker lost (tasks.schedule.requeue_lost), as in production.
    beat = Process("beat", [str(BIN / "celery"), "-A", "celery_app", "beat"], env)
    beat.expect("is starting.")
    web, base = start_web(env)
    stack = Faulty(redis=redis, smtp=smtp, twilio=twilio, env=env, web=web, base=base)
    yield stack
    stop_all([web, beat, *stack.retired, *([stack.worker] if stack.worker else [])])
    twilio.stop()
    smtp.stop()
    redis.stop()


def new_address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def test_worker_group_killed_with_tens_of_sends_in_flight_loses_nothing(faulty: Faulty) -> None:
    # All 160 are queued before the worker runs (as in the SIGTERM test below): on a slow
    # machine, posting them one by one took longer than sending them, and no more than a few
    # were ever in flight.
    faulty.without_worker()
    faulty.smtp.handler.rcpt_delay = 0.2  # a server far away: 16 sends in flight at a time
    try:
        ids = [faulty.post_mail(new_address("kill")).json()["id"] for _ in range(160)]
        faulty.ensure_worker(concurrency=16)
        wait_for(lambda: faulty.smtp.handler.in_flight >= 8, what="many sends in flight")
        wait_for(lambda: faulty.arrived(ids) >= 20, what="the first deliveries")
        faulty.kill_worker()
        at_kill = faulty.arrived(ids)
        assert at_kill < 160, "the worker finished before it was killed: the test proves nothing"
        faulty.ensure_worker(concurrency=16)
        # The dead worker's 16 come back after the visibility timeout (10 s), then wait out
        # their claims (5 s). A message kombu took off the list in the instant of the kill,
        # before the worker wrote it down as taken, is gone from the broker: beat queues it
        # again after LOST_AFTER (30 s). A loaded machine can take a while longer (the test's
        # own limit is 120 s).
        faulty.wait_sent(ids, timeout=90)
    finally:
        faulty.smtp.handler.rcpt_delay = 0.0
    counts = [faulty.arrivals(i) for i in ids]
    assert all(c >= 1 for c in counts)
    twice = sum(c - 1 for c in counts)
    print(f"\n160 mails, worker SIGKILLed with 16 in flight after {at_kill} arrived: {twice} twice")
    # Only a mail the server took in the instant before the kill, whose success the worker
    # could not record, can go out again (SMTP has no way to ask); none otherwise.
    assert twice <= 2


def test_sigterm_mid_drain_finishes_what_runs_and_hands_back_the_rest(faulty: Faulty) -> None:
    # All 80 are queued before a worker runs: on a busy machine, posting them one by one took
    # longer than sending them, and the drain was over before the SIGTERM.
    faulty.without_worker()
    faulty.smtp.handler.rcpt_delay = 0.2
    try:
        ids = [faulty.post_mail(new_address("term")).json()["id"] for _ in range(80)]
        worker = faulty.ensure_worker(concurrency=8)
        wait_for(lambda: faulty.arrived(ids) >= 10, what="the first deliveries")
        # A send from now on takes a second: the drain cannot end before the worker has taken
        # in its SIGTERM, however late the test sees the first ten.
        faulty.smtp.handler.rcpt_delay = 1.0
        assert worker.stop(signal.SIGTERM, timeout=30) == 0
        faulty.worker = None
        at_stop = faulty.arrived(ids)
        assert at_stop < 80, "the drain finished before SIGTERM: the test proves nothing"
        # What was in flight finished and was recorded; nothing is left half-done.
        assert not any(faulty.status(i)["status"] == "sending" for i in ids)
        faulty.smtp.handler.rcpt_delay = 0.0
        faulty.ensure_worker(concurrency=8)
        faulty.wait_sent(ids)
    finally:
        faulty.smtp.handler.rcpt_delay = 0.0
    assert [faulty.arrivals(i) for i in ids] == [1] * 80


def test_a_hanging_smtp_server_is_cut_off_and_the_mail_retried(faulty: Faulty) -> None:
    faulty.ensure_worker()
    to = new_address("hang")
    faulty.smtp.handler.rcpt_delays[to].append(30.0)  # the first try hangs at RCPT TO
    notification_id = faulty.post_mail(to).json()["id"]
    wait_for(lambda: to in faulty.smtp.handler.rcpt_seen, what="the first try to reach RCPT")
    faulty.wait_sent([notification_id], timeout=60)
    assert faulty.arrivals(notification_id) == 1
    assert faulty.status(notification_id)["attempts"] == 2


def test_smtp_refusing_connections_for_10_s_then_back(faulty: Faulty) -> None:
    faulty.ensure_worker()
    faulty.smtp.stop()
    started = time.monotonic()
    try:
        ids = [faulty.post_mail(new_address("down")).json()["id"] for _ in range(5)]
        wait_for(
            lambda: all(
                (s := faulty.status(i))["status"] == "retrying" and s["attempts"] >= 2 for i in ids
            ),
            what="every mail to be retrying",
        )
        # The outage lasts 10 s by design; the test waits for that, then for the deliveries.
        wait_for(lambda: time.monotonic() - started >= 10, timeout=15, what="10 s of outage")
    finally:
        faulty.smtp.start()
    faulty.wait_sent(ids)
    assert [faulty.arrivals(i) for i in ids] == [1] * 5


def test_redis_down_is_503_fast_and_recovers_without_restarts(faulty: Faulty) -> None:
    worker = faulty.ensure_worker()
    web_pid, worker_pid = faulty.web.popen.pid, worker.popen.pid
    faulty.redis.stop()
    try:
        started = time.monotonic()
        refused = faulty.post_mail(new_address("redis-down"))
        took = time.monotonic() - started
        assert refused.status_code == 503
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert took < 5, f"503 took {took:.1f} s"
    finally:
        faulty.redis.start()
    accepted = wait_for(
        lambda: (r := faulty.post_mail(new_address("redis-back"))).status_code == 202 and r,
        what="the web to accept again",
    )
    faulty.wait_sent([accepted.json()["id"]], timeout=60)
    assert (faulty.web.popen.pid, worker.popen.pid) == (web_pid, worker_pid)
    assert faulty.web.alive() and worker.alive()


def test_a_captcha_whose_code_expired_unsent_is_failed_not_sent(faulty: Faulty) -> None:
    """With no worker for longer than the code lives, the message expires: status failed."""
    faulty.without_worker()
    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    body = {"phone": phone, "purpose": "expiry"}
    url = f"{faulty.base}/v1/sms/captcha"
    notification_id = requests.post(url, json=body, headers=auth(), timeout=10).json()["id"]
    # The stack's codes live 10 s: wait that out with no worker, then start one.
    wait_for(
        lambda: time.time() > faulty.created(notification_id) + 10.5, timeout=15, what="expiry"
    )
    faulty.ensure_worker()
    status = wait_for(
        lambda: (s := faulty.status(notification_id))["status"] == "failed" and s,
        what="the expired captcha to fail",
    )
    assert status["error"] == "the code expired before it could be sent"
    assert status["attempts"] == 0
    assert faulty.twilio.texts_to(phone) == []


def test_a_fan_out_killed_half_way_resumes_and_sends_every_row_once(faulty: Faulty) -> None:
    state = redis.Redis.from_url(faulty.redis.url(0), decode_responses=True)
    # A worker for the fan-out lane only: the rows it makes wait in the bulk lane, unsent, so
    # the kill can only cut the fan-out (a mail the server took the instant before a kill
    # can go out twice, whatever we do: the other fault tests cover that).
    for _ in range(3):
        faulty.ensure_worker(concurrency=4, queues="batch")
        recipients = rows(5000, "fan")
        batch_id = post_batch(faulty.base, recipients)["id"]
        key = batch_key(batch_id)
        deadline = time.monotonic() + 30
        # Polled tightly: the whole fan-out takes a fraction of a second.
        while not int(state.hget(key, "fanned") or 0):
            assert time.monotonic() < deadline, "the fan-out never began"
            time.sleep(0.001)
        faulty.kill_worker()
        fanned = int(state.hget(key, "fanned") or 0)
        if fanned < 5000:
            break
    assert 0 < fanned < 5000, "every fan-out finished before the kill: the test proves nothing"
    # The fan-out's message comes back after the visibility timeout (10 s) to a worker of every
    # lane, which goes on from the last whole chunk and sends the rows.
    faulty.ensure_worker(concurrency=16)
    done = wait_batch(faulty.base, batch_id, "done", timeout=100)
    assert done["counts"] == {"sent": 5000}
    by_rcpt = faulty.smtp.by_recipient()
    assert [len(by_rcpt.get(r["to"], [])) for r in recipients] == [1] * 5000
    print(f"\nfan-out of 5,000 rows SIGKILLed after {fanned}: every row sent once")

"""Redis fills up (maxmemory, noeviction) between a provider's answer and the record of it.

A stack of its own (web, worker, beat) on a Redis of its own, and peers that fill that Redis with
a real ``CONFIG SET maxmemory`` the moment they take a message. Issue 35 saw the record write
fail with OOM, the record left ``sending``, and the sweep send it again once the lease ran out:
5 of 5 SMS captchas twice, a mail twice, and a captcha that was texted ``failed: the code expired
before it could be sent``. Here every notification is delivered once and recorded ``sent``, with
the sweep given its chance after the lease; meanwhile the service says plainly that Redis is full.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis
import requests
from aiosmtpd.smtp import Envelope

from notifier.lanes import LANES
from notifier.stores.notifications import dispatched_at_keys, record_key
from notifier.tasks.schedule import LOST_AFTER
from tests.support.harness.processes import BIN, Process
from tests.support.harness.stack import (
    Stack,
    address,
    new_phone,
    send,
    stack_settings,
    start_stack,
)
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import RecordingHandler, SmtpSink
from tests.support.peers.twilio import FakeTwilio

# Redis is filled on purpose and each send's recovery waited out (the sweep's 30 s): soak.
pytestmark = [pytest.mark.integration, pytest.mark.soak]


class FillingHandler(RecordingHandler):
    """Takes a mail, and fills Redis as it answers, the first time for each address in ``fill``."""

    def __init__(self, redis_server: RedisServer) -> None:
        super().__init__()
        self.redis_server = redis_server
        self.fill: set[str] = set()

    def _take(self, envelope: Envelope) -> str:
        answer = super()._take(envelope)
        with self.lock:
            due = self.fill & {a.lower() for a in envelope.rcpt_tos}
            self.fill -= due
        if due:
            self.redis_server.fill()
        return answer


class FillingTwilio(FakeTwilio):
    """Takes a text, and fills Redis as it answers, the first time for each number in ``fill``."""

    def __init__(self, redis_server: RedisServer) -> None:
        super().__init__()
        self.redis_server = redis_server
        self.fill: set[str] = set()

    def _created(self, sid: str, form: dict[str, str]) -> dict[str, Any]:
        created = super()._created(sid, form)
        with self.lock:
            due = form.get("To") in self.fill
            self.fill.discard(form.get("To", ""))
        if due:
            self.redis_server.fill()
        return created


@pytest.fixture(scope="module")
def peers(fillable: RedisServer) -> Iterator[tuple[SmtpSink, FillingTwilio]]:
    smtp = SmtpSink()
    smtp.handler = FillingHandler(fillable)
    smtp.start()
    twilio = FillingTwilio(fillable).start()
    yield smtp, twilio
    twilio.stop()
    smtp.stop()


@pytest.fixture(scope="module")
def stack(
    fillable: RedisServer,
    peers: tuple[SmtpSink, FillingTwilio],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """Web, worker and beat on the Redis to fill: a lease (the task time limit) of 5 s, so the
    sweep looks for lost sends soon; and codes that expire before it does, as a late send of one
    would find."""
    smtp, twilio = peers
    settings = {
        **stack_settings(fillable, smtp, twilio, tmp_path_factory.mktemp("state")),
        "broker_visibility_timeout": 10,
        "captcha_ttl": 20,
    }
    running = start_stack(settings, smtp, twilio)
    yield running
    running.stop()


def filled_then_freed(
    stack: Stack, state: redis.Redis, fillable: RedisServer, path: str, body: dict[str, Any]
) -> tuple[str, float]:
    """POST one notification whose send fills Redis; once its send is recorded (or its lease
    has run out, when it is not), check what the service says while full, then free Redis.
    Its id and its lease's end."""
    answer = stack.post(path, body)
    assert answer.status_code == 202, answer.text
    notification_id: str = answer.json()["id"]
    key = record_key(notification_id)
    wait_for(lambda: fillable_is_full(state), timeout=30, what="the peer to fill Redis")
    lease_until = float(state.hget(key, "lease_until") or 0)
    wait_for(
        lambda: state.hget(key, "status") == "sent" or time.time() > lease_until + 1,
        timeout=60,
        what=f"{notification_id} to be recorded sent, or its lease to run out",
    )
    # Meanwhile the service says what is wrong: Redis answers, and refuses writes.
    ready = stack.get("/readyz")
    assert ready.status_code == 503 and "OOM" in ready.json()["detail"], ready.text
    refused = stack.post("/v1/mail", {"to": [address("full")], "subject": "s", "text": "t"})
    assert refused.status_code == 503, refused.text
    assert "full" in refused.json()["detail"] and "cannot be reached" not in refused.text
    fillable.free()
    return notification_id, lease_until


def fillable_is_full(state: redis.Redis) -> bool:
    return state.config_get("maxmemory").get("maxmemory") != "0"


def quiet(state: redis.Redis, ids: list[str]) -> bool:
    """Every record final, every lane empty, no message taken and not yet acknowledged."""
    statuses = [state.hget(record_key(i), "status") for i in ids]
    lanes = sum(int(state.llen(lane)) for lane in LANES)
    return (
        all(s in ("sent", "failed") for s in statuses) and not lanes and not state.hlen("unacked")
    )


def critical(process: Process) -> list[str]:
    return [line for line in process.output().splitlines() if '"level": "CRITICAL"' in line]


@pytest.mark.timeout(240)
def test_sends_a_full_redis_could_not_record_are_recorded_and_never_sent_again(
    fillable: RedisServer, peers: tuple[SmtpSink, FillingTwilio], stack: Stack
) -> None:
    smtp, twilio = peers
    state = redis.Redis.from_url(fillable.url(), decode_responses=True)
    mail_to, phone, code_to = address("full-mail"), new_phone(), address("full-code")
    smtp.handler.fill |= {mail_to, code_to}  # type: ignore[attr-defined]
    twilio.fill.add(phone)
    sent = [
        filled_then_freed(stack, state, fillable, "/v1/mail",
                          {"to": [mail_to], "subject": "Receipt", "text": "Thanks"}),
        filled_then_freed(stack, state, fillable, "/v1/sms/captcha",
                          {"phone": phone, "purpose": "login"}),
        filled_then_freed(stack, state, fillable, "/v1/mail/captcha",
                          {"to": code_to, "purpose": "login", "locale": "en"}),
    ]  # fmt: skip
    ids = [notification_id for notification_id, _ in sent]
    # The sweep's chance: beat's dispatch (and its look for lost sends) has run past each lease
    # and LOST_AFTER, when a send left `sending` would have been queued again.
    looked = max(lease for _, lease in sent) + LOST_AFTER + 1
    wait_for(
        lambda: min(float(state.get(k) or 0) for k in dispatched_at_keys()) > looked,
        timeout=90,
        what="beat's sweep to run past the leases",
    )
    wait_for(lambda: quiet(state, ids), timeout=60, what="every send to settle")
    by_recipient = smtp.by_recipient()
    assert [len(by_recipient[mail_to]), len(twilio.texts_to(phone)),
            len(by_recipient[code_to])] == [1, 1, 1]  # fmt: skip
    records = [state.hgetall(record_key(i)) for i in ids]
    assert [(r["status"], r.get("error", "")) for r in records] == [("sent", "")] * 3
    assert critical(stack.worker) == []
    assert requests.get(f"{stack.base}/readyz", timeout=10).status_code == 200


def test_a_worker_started_on_a_full_redis_waits_and_carries_on(
    fillable: RedisServer, stack: Stack
) -> None:
    """It cannot take a message (kombu notes each as unacknowledged, a write): issue 35 saw it
    restart its consumer at once, again and again, logging CRITICAL every second."""
    stack.worker.stop()
    queued = send(stack, to=[address("full-later")])
    fillable.fill()
    failed_dispatches = stack.beat.output().count("Couldn't apply scheduled task")
    worker = Process("worker", [str(BIN / "celery"), "-A", "celery_app", "worker"], stack.env)
    stack.worker = worker  # the stack's from now on: stopped with it
    try:
        worker.expect("taking no message until it takes writes again")
        # A while full: beat, which cannot queue its dispatch either, has tried three times more.
        wait_for(
            lambda: (
                stack.beat.output().count("Couldn't apply scheduled task") >= failed_dispatches + 3
            ),
            what="three more of beat's dispatches to be refused",
        )
        assert critical(worker) == [] and worker.alive()
        fillable.free()
        stack.wait_status(queued, "sent")
        assert critical(worker) == []
    finally:
        fillable.free()

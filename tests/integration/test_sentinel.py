"""Losing the Redis primary: real sentinels promote a replica while mail and captchas go on.

Each test starts its own primary, replicas and three sentinels, a web, a worker and beat on them
(``redis+sentinel://`` in ``NOTIFIER_REDIS_URL``), and SIGKILLs the primary (or freezes it, as a
host that vanishes without a word) while the stack works.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.stores.notifications import record_key
from tests.support.harness.clients import auth
from tests.support.harness.stack import (
    Stack,
    address,
    code_sent_to,
    new_phone,
    stack_settings,
    start_stack,
    verify,
)
from tests.support.harness.steady import SteadyMail
from tests.support.harness.wait import wait_for
from tests.support.peers.sentinel import SentinelGroup
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

# Each test takes a primary or a replica away on purpose and waits out what follows: soak.
pytestmark = [pytest.mark.integration, pytest.mark.soak]


def sentinel_stack(
    group: SentinelGroup, smtp: SmtpSink, twilio: FakeTwilio, state: Path, **more: Any
) -> Stack:
    settings = {
        **stack_settings(group.nodes[0], smtp, twilio, state),
        "redis_url": group.url(),
        # A message a worker had taken from the primary but not started when it died stays in
        # the broker's unacknowledged set (kombu cannot put it back while no primary answers)
        # and comes back after the visibility timeout: 30 s here instead of an hour.
        "broker_visibility_timeout": 30,
    }
    return start_stack({**settings, **more}, smtp, twilio)


@pytest.fixture
def group(request: pytest.FixtureRequest) -> Iterator[SentinelGroup]:
    """A primary, two replicas (or as many as a test asks for) and three sentinels.

    Two replicas is the contract's acceptance set-up; ``ONE_REPLICA`` asks for one.
    """
    started = SentinelGroup(replicas=getattr(request, "param", 2)).start()
    yield started
    started.stop()


ONE_REPLICA = pytest.mark.parametrize("group", [1], indirect=True, ids=["one_replica"])


def test_the_primary_killed_under_steady_mail_loses_nothing(
    group: SentinelGroup, smtp: SmtpSink, twilio: FakeTwilio, tmp_path: Path
) -> None:
    stack = sentinel_stack(group, smtp, twilio, tmp_path)
    try:
        # Before: a captcha with one wrong try, and a mail due after the promotion.
        phone = new_phone()
        assert stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "login"}).ok
        code = code_sent_to(twilio, phone)
        wrong = "000000" if code != "000000" else "111111"
        assert verify(stack, phone, wrong)["attempts_left"] == 4
        due = datetime.now(UTC) + timedelta(seconds=12)
        later = address("scheduled")
        scheduled = stack.post(
            "/v1/mail",
            {"to": [later], "subject": "Later", "text": "Plain", "send_at": due.isoformat()},
        )
        assert scheduled.status_code == 202, scheduled.text

        with SteadyMail(stack) as steady:
            wait_for(lambda: len(steady.accepted_after(0)) >= 40, what="mail flowing")
            old, killed = group.kill_primary()
            promoted = group.wait_promoted(old)
            wait_for(
                lambda: len(steady.accepted_after(promoted)) >= 40,
                timeout=30,
                what="202s again after the promotion",
            )
        answers = steady.answers
        # No 500 and no hang: every answer came within 2 s, a 202 or a fast 503.
        assert {status for _, _, status, _, _ in answers} <= {202, 503}, answers
        assert max(took for _, took, _, _, _ in answers) < 2.0
        first_again = steady.accepted_after(killed)[0][0]
        assert first_again - promoted < 5.0, (killed, promoted, first_again)

        # Every accepted mail arrives exactly once (the web, worker and beat never restarted).
        accepted = [(found, to) for _, _, status, found, to in answers if status == 202]

        def missing() -> list[str]:
            arrived = smtp.by_recipient()
            return [str(found) for found, to in accepted if not arrived.get(to)]

        try:
            wait_for(lambda: not missing(), timeout=60, what=f"{len(accepted)} mails to arrive")
        except AssertionError:
            statuses = {i: stack.status(i)["status"] for i in missing()}
            raise AssertionError(
                f"not arrived: {statuses}\n{stack.worker.output()[-6000:]}"
            ) from None
        arrived = smtp.by_recipient()
        assert [to for _, to in accepted if len(arrived[to]) != 1] == []
        assert all(p.alive() for p in (stack.web, stack.worker, stack.beat))
        # The worker takes from the new primary within a second or so of the promotion (not
        # after kombu's 2 s, 4 s…): the first mail accepted after it arrives soon after.
        clock = time.time() - time.monotonic()
        after = [found for _, _, _, found, _ in steady.accepted_after(promoted) if found]
        taking = min(smtp.handler.arrivals[found] for found in after) - (promoted + clock)
        assert taking < 2.0, (
            f"the first mail accepted after the promotion arrived {taking:.2f} s on"
        )

        # The captcha's attempts survived: one wrong try is still counted, and the code works.
        assert verify(stack, phone, wrong)["attempts_left"] == 3
        assert verify(stack, phone, code) == {"valid": True}

        # The scheduled mail leaves on time after the failover, once.
        scheduled_id = scheduled.json()["id"]
        stack.wait_status(scheduled_id, "sent", timeout=40)
        assert len(smtp.by_recipient()[later]) == 1
        sent_at = datetime.fromisoformat(stack.status(scheduled_id)["updated_at"])
        # Due 12 s on, after the failover as a rule: its lateness is beat's dispatch (every
        # second) and two trips through the worker behind the failover's backlog, on two shared
        # cores (5.06 s seen on a machine that ran at half speed; the reconnection itself is
        # checked above).
        late = sent_at - due
        assert timedelta(0) <= late < timedelta(seconds=10), (late, promoted - killed)
    finally:
        stack.stop()


def test_a_primary_that_vanishes_without_a_word_and_comes_back_loses_nothing(
    group: SentinelGroup, smtp: SmtpSink, twilio: FakeTwilio, tmp_path: Path
) -> None:
    """A machine that dies silently (a frozen process: connections open, nothing answered, as
    a host that lost power or its network looks), then comes back with what it held: requests
    are 503 within 2 s, never a hang, and when it returns it is a replica of the promoted
    primary. What it was sent meanwhile never reached it, so every 202 is sent, once."""
    stack = sentinel_stack(group, smtp, twilio, tmp_path)
    try:
        with SteadyMail(stack) as steady:
            wait_for(lambda: len(steady.accepted_after(0)) >= 40, what="mail flowing")
            old = group.primary()
            group.pause(old)
            frozen = time.monotonic()
            promoted = group.wait_promoted(old)
            wait_for(lambda: len(steady.accepted_after(promoted)) >= 20, timeout=30,
                     what="202s again after the promotion")  # fmt: skip
            group.resume(old)  # back, believing itself the primary until the sentinels say
            back = time.monotonic()
            wait_for(lambda: group.role(old) == "slave", timeout=30,
                     what="the old primary to become a replica")  # fmt: skip
            wait_for(lambda: len(steady.accepted_after(back)) >= 40, timeout=30,
                     what="202s after it came back")  # fmt: skip
        answers = steady.answers
        assert {status for _, _, status, _, _ in answers} <= {202, 503}, answers
        assert max(took for _, took, _, _, _ in answers) < 2.0
        assert steady.accepted_after(frozen)[0][0] - promoted < 5.0
        accepted = [str(found) for _, _, status, found, _ in answers if status == 202]
        # Polled by id, not by scanning every message the session's server holds under its lock
        # (by_recipient): with thousands held by the end of a full run, each scan holds up the
        # server's answers. (One full run saw a burst of this test's sends time out after 5 s at
        # that server and go twice; this is the one part of it the test itself could cause.)
        wait_for(lambda: all(i in smtp.handler.arrivals for i in accepted), timeout=60,
                 what=f"{len(accepted)} mails to arrive")  # fmt: skip
        twice = [i for i in accepted if len(smtp.received(i)) != 1]
        assert twice == [], "\n".join(
            line for line in stack.worker.output().splitlines() if any(i in line for i in twice)
        )
        assert all(p.alive() for p in (stack.web, stack.worker, stack.beat))
    finally:
        stack.stop()


@ONE_REPLICA
def test_without_min_replicas_what_a_lagging_replica_lacks_is_lost(
    group: SentinelGroup, smtp: SmtpSink, twilio: FakeTwilio, tmp_path: Path
) -> None:
    """The window docs/production.md, "Surviving the loss of the Redis primary", documents for min replicas 0:
    what the primary acknowledged and no replica held yet dies with it."""
    stack = sentinel_stack(group, smtp, twilio, tmp_path, redis_min_replicas=0)
    try:
        stack.worker.stop()  # what happens to the records alone, with nothing sent meanwhile
        before = stack.post("/v1/mail", {"to": [address("kept")], "subject": "K", "text": "t"})
        assert before.status_code == 202
        wait_for(lambda: group.nodes[1].answers() and _holds(group, before.json()["id"]),
                 what="the replica to hold the first mail")  # fmt: skip
        replica = group.nodes[1]
        group.pause(replica, cut=True)
        window = [
            stack.post("/v1/mail", {"to": [address("window")], "subject": "W", "text": "t"})
            for _ in range(5)
        ]
        assert [a.status_code for a in window] == [202] * 5  # acknowledged without a replica
        old, _ = group.kill_primary()
        group.resume(replica)
        group.wait_promoted(old)
        wait_for(lambda: stack.get_as(f"/v1/notifications/{before.json()['id']}").ok,
                 timeout=20, what="the web on the promoted replica")  # fmt: skip
        lost = [a.json()["id"] for a in window]
        assert [stack.get_as(f"/v1/notifications/{i}").status_code for i in lost] == [404] * 5
    finally:
        stack.stop()


def _holds(group: SentinelGroup, notification_id: str) -> bool:
    import redis

    replica = redis.Redis(port=group.nodes[1].port, socket_timeout=0.5)
    return bool(replica.exists(record_key(notification_id)))


@ONE_REPLICA
def test_a_write_no_replica_confirms_is_503_and_safe_to_repeat_with_its_key(
    group: SentinelGroup, smtp: SmtpSink, twilio: FakeTwilio, tmp_path: Path
) -> None:
    stack = sentinel_stack(group, smtp, twilio, tmp_path, redis_replica_timeout_ms=300)
    try:
        to = address("confirmed")
        body = {"to": [to], "subject": "Once", "text": "Plain"}
        key = {"Idempotency-Key": f"once-{to}"}
        group.pause(group.nodes[1])
        started = time.monotonic()
        refused = requests.post(
            f"{stack.base}/v1/mail", json=body, headers={**auth(), **key}, timeout=10
        )
        assert refused.status_code == 503, refused.text
        assert time.monotonic() - started < 2.0
        assert refused.headers["Content-Type"] == "application/problem+json"
        assert "replicas" in refused.json()["detail"]
        group.resume(group.nodes[1])
        again = requests.post(
            f"{stack.base}/v1/mail", json=body, headers={**auth(), **key}, timeout=10
        )
        assert again.status_code == 202, again.text
        stack.wait_status(again.json()["id"], "sent")
        wait_for(lambda: smtp.by_recipient().get(to), what="the mail")
        assert len(smtp.by_recipient()[to]) == 1
    finally:
        stack.stop()

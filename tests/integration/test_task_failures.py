"""What a task cannot classify, through HTTP and a real worker: never a record left ``sending``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from notifier.stores.batch_counts import scheduled_key
from notifier.stores.notifications import payload_key
from tests.support.harness.stack import Stack, address, log_lines, send
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


def state(stack: Stack) -> redis.Redis:
    return redis.Redis.from_url(stack.env["NOTIFIER_REDIS_URL"], decode_responses=True)


def test_a_mail_that_crashes_the_worker_is_retried_then_failed_with_a_generic_error(
    stack: Stack,
) -> None:
    hidden = address("hidden")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    notification_id = send(stack, to=[address("crash")], send_at=later)
    # A payload no release of ours stores (a lone surrogate cannot be encoded): building the
    # message raises an exception no provider classifies, which carries the subject with it.
    r = state(stack)
    key = payload_key(notification_id)
    payload = json.loads(r.get(key) or "{}")
    r.set(key, json.dumps({**payload, "subject": f"Hi {hidden} \udcff"}), keepttl=True)
    r.zadd(
        scheduled_key(notification_id), {notification_id: time.time()}
    )  # due now: beat dispatches it

    status = stack.wait_status(notification_id, "failed", timeout=60)
    assert (status["attempts"], status["error"], status["provider"]) == (
        8,
        "internal error (UnicodeEncodeError)",
        None,
    )
    assert stack.smtp.received(notification_id) == []
    assert r.get(key) is None  # the content went with the final status

    def logged() -> list[dict[str, Any]]:
        lines = [json.loads(line) for line in stack.worker.output().splitlines() if line[:1] == "{"]
        return [e for e in lines if notification_id in e["msg"] and "internal error" in e["msg"]]

    entries = wait_for(lambda: len(logged()) == 8 and logged(), what="8 logged attempts")
    assert all(e["level"] == "ERROR" and "UnicodeEncodeError" in e["exc"] for e in entries)
    assert hidden not in "\n".join(log_lines(stack))


def test_a_mail_that_crashed_goes_out_once_its_content_can_be_sent(stack: Stack) -> None:
    to = address("mended")
    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    notification_id = send(stack, to=[to], send_at=later)
    r = state(stack)
    key = payload_key(notification_id)
    good = r.get(key) or "{}"
    r.set(key, json.dumps({**json.loads(good), "subject": "Hi \udcff"}), keepttl=True)
    r.zadd(scheduled_key(notification_id), {notification_id: time.time()})
    stack.wait_status(notification_id, "retrying")
    r.set(key, good, keepttl=True)  # as a deploy that fixes the bug would
    status = stack.wait_status(notification_id, "sent", "failed")
    assert status["status"] == "sent" and status["attempts"] >= 2
    assert len(stack.smtp.received(notification_id)) == 1


def test_an_smtp_refusal_that_quotes_non_ascii_addresses_is_masked_everywhere(
    stack: Stack,
) -> None:
    to = address("idn")
    tag = to.split("@")[0].split("-")[1]
    quoted = [
        f"用户{tag}@例子.中国",
        f"jürgen{tag}@bücher.example",
        f"josé{tag}@xn--bcher-kva.example",
    ]
    reply = f"550 5.1.1 <{to}> forwards to {quoted[0]}, {quoted[1]} and <{quoted[2]}>: unknown"
    stack.smtp.plan(to, reply.encode())
    notification_id = send(stack, to=[to])

    status = stack.wait_status(notification_id, "failed")
    assert status["error"] == (
        "SMTP 550: 5.1.1 <i***@example.com> forwards to 用***@例子.中国, j***@bücher.example "
        "and <j***@xn--bcher-kva.example>: unknown (all recipients refused)"
    )
    logged = wait_for(
        lambda: [line for line in stack.worker.output().splitlines() if notification_id in line],
        what="the worker's log line of the refusal",
    )
    assert "用***@例子.中国" in logged[-1]
    output = "\n".join(log_lines(stack))
    leaked = [a for a in (to, *quoted) if a in output]
    assert leaked == [], f"in the logs: {leaked}"

"""Lanes and a worker that hides provider latency, through HTTP, Redis and a real worker.

A login code must not wait behind bulk mail, and a worker keeps many sends in flight over a
bounded number of kept connections.
"""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.support.harness.processes import start_worker
from tests.support.harness.stack import Stack, address, send
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


def phone() -> str:
    return f"+86139{uuid.uuid4().int % 10**8:08d}"


def post_mails(stack: Stack, count: int, tag: str) -> list[str]:
    with ThreadPoolExecutor(8) as pool:
        return list(pool.map(lambda i: send(stack, to=[address(f"{tag}{i}")]), range(count)))


def post_captcha(stack: Stack, number: str) -> str:
    answer = stack.post("/v1/sms/captcha", {"phone": number, "purpose": "login"})
    assert answer.status_code == 202, answer.text
    found: str = answer.json()["id"]
    return found


def test_a_captcha_posted_behind_a_mail_backlog_overtakes_it(stack: Stack) -> None:
    stack.worker.stop()  # the backlog builds up while no worker runs, as at a busy moment
    stack.smtp.handler.rcpt_delay = 0.05  # a relay a little way off
    try:
        mails = post_mails(stack, 300, "backlog")
        number = phone()
        captcha = post_captcha(stack, number)
        stack.worker = start_worker(stack.env)
        stack.wait_status(captcha, "sent")
        arrived = stack.twilio.arrivals[number]
        wait_for(lambda: all(i in stack.smtp.handler.arrivals for i in mails), timeout=60)
    finally:
        stack.smtp.handler.rcpt_delay = 0.0
        stack.ensure_worker()  # the session's stack: the modules after need it
    before = sum(stack.smtp.handler.arrivals[i] < arrived for i in mails)
    # In one queue the code would come after all 300 mails; in its own lane it is taken at
    # the worker's first free thread.
    assert before < 100, f"{before} of 300 mails reached the relay before the login code"


def test_a_slow_relay_gets_many_sends_at_once_over_few_connections(stack: Stack) -> None:
    stack.smtp.handler.rcpt_delay = 0.1  # each mail spends 100 ms at the relay
    stack.smtp.handler.peak_in_flight = 0
    opened = stack.smtp.connections
    try:
        mails = post_mails(stack, 120, "slow")
        for notification_id in mails:
            stack.wait_status(notification_id, "sent")
    finally:
        stack.smtp.handler.rcpt_delay = 0.0
    assert all(len(stack.smtp.received(i)) == 1 for i in mails)
    assert stack.smtp.handler.peak_in_flight > 4, "sends went one at a time"
    connections = stack.smtp.connections - opened
    # Bounded by the worker's SMTP pool (32), and each connection carried several mails.
    assert connections <= 32 and connections < len(mails) / 3, f"{connections} connections"


def test_captchas_through_a_far_provider_go_out_together_on_kept_connections(
    stack: Stack,
) -> None:
    stack.twilio.delay = 0.2  # Twilio as far away as it is from most places
    with stack.twilio.lock:
        stack.twilio.peak_in_flight = 0
        opened = stack.twilio.connections
    try:
        numbers = [phone() for _ in range(60)]
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda n: post_captcha(stack, n), numbers))
        for notification_id in ids:
            stack.wait_status(notification_id, "sent")
    finally:
        stack.twilio.delay = 0.0
    assert all(len(stack.twilio.texts_to(n)) == 1 for n in numbers)
    assert stack.twilio.peak_in_flight > 4, "texts went one at a time"
    connections = stack.twilio.connections - opened
    # Bounded by the worker's threads (64), and fewer than the texts: connections were kept.
    assert connections <= 64 and connections < len(numbers), f"{connections} connections"

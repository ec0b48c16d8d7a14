"""The operator console in a real headless Chromium, against the running stack (web, worker,
beat, Redis, an SMTP server): log in, the overview, a recipient search, a batch's live progress
bar, cancel, a suppression removed, a paused client resumed. Each test saves a screenshot under ``test-artifacts/console/``
(the ones in docs/images/ come from here)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import requests

from notifier.lanes import LANES
from tests.support.harness.clients import auth
from tests.support.harness.console import OPERATOR, PASSWORD, console_users_json, pause_mail
from tests.support.harness.stack import Stack, address, log_lines, stack_settings, start_stack
from tests.support.harness.wait import wait_for
from tests.support.peers.chromium import Page
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = [pytest.mark.integration, pytest.mark.browser]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "console"
DB = 6  # this module's own database of the worker's Redis: its log holds only its own


@pytest.fixture(scope="module")
def sink() -> Iterator[SmtpSink]:
    """An SMTP server of this module's own (the batch test slows it down)."""
    server = SmtpSink()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def console_stack(
    redis_server: RedisServer,
    sink: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    """The stack with the console on for the tests' operator, 8 threads a worker."""
    redis.Redis.from_url(redis_server.url(DB)).flushdb()
    settings = stack_settings(redis_server, sink, twilio, tmp_path_factory.mktemp("console"), DB)
    settings |= {"console_users": console_users_json(), "worker_concurrency": 8}
    running = start_stack(settings, sink, twilio)
    yield running
    running.stop()


def type_into(page: Page, selector: str, text: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).value = {json.dumps(text)}")


def click(page: Page, selector: str) -> None:
    page.evaluate(f"document.querySelector({json.dumps(selector)}).click()")


def heading(page: Page, text: str) -> None:
    """Wait until the page loaded is the one whose h1 starts with ``text``."""
    page.wait_for(f"document.querySelector('h1')?.textContent.startsWith({json.dumps(text)})")


def log_in(page: Page, stack: Stack, path: str = "/console/") -> None:
    """Open ``path``, be sent to the login form, log in, and land on ``path``."""
    page.goto(f"{stack.base}{path}")
    heading(page, "Log in")
    type_into(page, "input[name=name]", OPERATOR)
    type_into(page, "input[name=password]", PASSWORD)
    click(page, "form.login button")
    page.wait_for(
        f"location.pathname === {json.dumps(path.split('?')[0])}"
        " && document.readyState === 'complete' && document.querySelector('main h1')"
    )


def later(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()


def post(stack: Stack, path: str, body: dict[str, Any], who: str = "tester") -> str:
    answer = requests.post(f"{stack.base}{path}", json=body, headers=auth(who), timeout=10)
    assert answer.status_code == 202, answer.text
    found: str = answer.json()["id"]
    return found


def texts(page: Page, selector: str) -> list[str]:
    found: list[str] = page.evaluate(
        f"[...document.querySelectorAll({json.dumps(selector)})].map((e) => e.textContent.trim())"
    )
    return found


def test_log_in_and_the_overview_shows_each_lane(console_stack: Stack, page: Page) -> None:
    sent = [post(console_stack, "/v1/mail", {"to": [address("o")], "subject": "Hi", "text": "Hi"})
            for _ in range(5)]  # fmt: skip
    for notification_id in sent:
        console_stack.wait_status(notification_id, "sent")
    page.goto(f"{console_stack.base}/console/")
    heading(page, "Log in")
    # A wrong password first: refused, and still no page.
    type_into(page, "input[name=name]", OPERATOR)
    type_into(page, "input[name=password]", "not the password")
    click(page, "form.login button")
    page.wait_for("document.querySelector('#login-error')")
    type_into(page, "input[name=name]", OPERATOR)
    type_into(page, "input[name=password]", PASSWORD)
    click(page, "form.login button")
    heading(page, "Overview")
    assert texts(page, "table.lanes tbody td:first-child") == list(LANES)
    # The mail lane's chart has this minute's sends; every lane has its chart.
    assert page.evaluate("document.querySelectorAll('table.lanes svg.chart').length") == len(LANES)
    assert page.evaluate("document.querySelectorAll('#lane-mail rect.sent').length") >= 1
    assert texts(page, ".health li")[0].startswith("Redis: up")
    page.screenshot(ARTIFACTS / "overview.png")
    # Clients: the tester's five mails of this hour, its guard, its key live.
    click(page, "nav a[href='/console/clients']")
    heading(page, "Clients")
    row = texts(page, "#client-tester-mail td")
    assert row[:5] == ["tester", "live", "mail", "5", "0"], row
    page.screenshot(ARTIFACTS / "clients.png")


def test_a_recipient_search_finds_its_notification_and_not_another_clients(
    console_stack: Stack, page: Page
) -> None:
    person = address("searched")
    body = {"to": [person], "subject": "Your order", "text": "Shipped", "send_at": later(3600)}
    mine = post(console_stack, "/v1/mail", {**body, "reference": "order-1234"}, "shop")
    theirs = post(console_stack, "/v1/mail", body, "bank")
    other = post(console_stack, "/v1/mail", {**body, "to": [address("other")]}, "shop")
    log_in(page, console_stack, "/console/messages")
    page.evaluate("document.querySelector('select[name=client]').value = 'shop'")
    type_into(page, "#recipient", person)
    click(page, "#search")
    page.wait_for("document.querySelector('#searched')")
    found = texts(page, "table.log tbody tr.row td:nth-child(2)")
    assert found == [mine], (found, theirs, other)
    html = page.evaluate("document.documentElement.outerHTML")
    masked = f"{person[0]}***@example.com"
    assert masked in html and person not in html and person not in page.evaluate("location.href")
    assert [line for line in log_lines(console_stack) if person in line] == []
    page.screenshot(ARTIFACTS / "message-log.png")
    # Its timeline, one click on.
    click(page, "table.log tbody tr.row td:nth-child(2) a")
    heading(page, "Notification")
    assert "accepted" in texts(page, ".timeline li")[0]
    page.screenshot(ARTIFACTS / "timeline.png")


def test_cancel_from_the_page_stops_a_scheduled_mail(console_stack: Stack, page: Page) -> None:
    body = {"subject": "Reminder", "text": "Tomorrow at nine"}
    doomed = post(console_stack, "/v1/mail", {**body, "to": [address("doomed")],
                                               "send_at": later(20)})  # fmt: skip
    log_in(page, console_stack, f"/console/notifications/{doomed}")
    page.wait_for("document.querySelector('#status')?.textContent === 'scheduled'")
    click(page, "#cancel")
    page.wait_for("document.querySelector('#status')?.textContent === 'cancelled'")
    assert not page.evaluate("document.querySelector('#cancel')")
    assert console_stack.status(doomed)["status"] == "cancelled"
    # A mail scheduled just after it goes out, so beat has looked past the cancelled one's time,
    # and the cancelled one never reached the SMTP server.
    control = post(console_stack, "/v1/mail", {**body, "to": [address("control")],
                                                "send_at": later(21)})  # fmt: skip
    console_stack.wait_status(control, "sent", timeout=60)
    assert console_stack.smtp.received(doomed) == []
    assert console_stack.status(doomed)["status"] == "cancelled"


def test_remove_a_suppression(console_stack: Stack, page: Page) -> None:
    person = address("suppressed")
    answer = requests.post(f"{console_stack.base}/v1/suppressions", json={"address": person},
                           headers=auth("shop"), timeout=10)  # fmt: skip
    assert answer.status_code == 200
    log_in(page, console_stack, "/console/suppressions?client=shop")
    type_into(page, "#find-address", person)
    click(page, "#find")
    page.wait_for("document.querySelector('#searched')")
    assert texts(page, "tr.entry td:first-child") == [f"{person[0]}***@example.com"]
    assert person not in page.evaluate("document.documentElement.outerHTML")
    click(page, "tr.entry button.remove")
    page.wait_for("document.querySelector('#none')")
    gone = requests.get(f"{console_stack.base}/v1/suppressions/{person}", headers=auth("shop"),
                        timeout=10)  # fmt: skip
    assert gone.status_code == 404
    # The audit line of the removal names the address masked, as every line does.
    audit = [line for line in log_lines(console_stack) if "remove_suppression" in line]
    assert audit and f"{person[0]}***@example.com" in audit[-1]
    assert [line for line in log_lines(console_stack) if person in line] == []


def test_a_2000_row_batch_progress_bar_moves_while_it_drains_and_reaches_100(
    console_stack: Stack, page: Page
) -> None:
    log_in(page, console_stack, "/console/batches")
    # A server a little slow to take each mail: the drain lasts long enough to watch.
    console_stack.smtp.handler.data_delay = 0.02
    try:
        rows = [{"to": address("row"), "data": {}} for _ in range(2000)]
        batch = post(console_stack, "/v1/mail/batch",
                     {"subject": "News", "text": "Hello", "recipients": rows})  # fmt: skip
        page.goto(f"{console_stack.base}/console/batches/{batch}")
        heading(page, "Batch")
        seen: list[int] = []

        def progressed() -> bool:
            value = int(page.evaluate("document.querySelector('#progress')?.value ?? -1"))
            if value >= 0 and (not seen or seen[-1] != value):
                seen.append(value)
                if 0 < value < 2000 and len(seen) == 2:
                    page.screenshot(ARTIFACTS / "batch-draining.png", whole=False)
            return value == 2000

        wait_for(progressed, timeout=180, what="the progress bar at 2000")
    finally:
        console_stack.smtp.handler.data_delay = 0.0
    # It moved: values between none and all were shown, rising, while the rows drained.
    assert [v for v in seen if 0 < v < 2000], seen
    assert seen == sorted(seen)
    page.wait_for("document.querySelector('#batch')?.hasAttribute('data-live-final')")
    assert "(100%)" in texts(page, "#progress-text")[0]
    # Its rows on the page moved with it.
    assert set(texts(page, "table.rows td.status")) == {"sent"}
    page.screenshot(ARTIFACTS / "batch-done.png", whole=False)


def test_resume_a_paused_client_from_the_clients_page(
    console_stack: Stack, page: Page, redis_server: RedisServer
) -> None:
    pause_mail(redis.Redis.from_url(redis_server.url(DB), decode_responses=True), "bank")
    mail = {"to": [address("paused")], "subject": "Hi", "text": "Hi"}
    refused = requests.post(f"{console_stack.base}/v1/mail", json=mail, headers=auth("bank"),
                            timeout=10)  # fmt: skip
    assert refused.status_code == 403, refused.text
    log_in(page, console_stack, "/console/clients")
    assert texts(page, "tr[id^='client-bank'] span.bad")[0].startswith("paused: bounce rate 10.0%")
    assert len(texts(page, "button.resume")) == 1  # the bank's row only
    page.screenshot(ARTIFACTS / "clients-paused.png", whole=False)
    click(page, "form[action='/console/clients/bank/resume'] button.resume")
    page.wait_for("document.querySelector('#notice')")
    assert texts(page, "#notice") == [
        "The mail of bank is resumed: its 24 h window starts again now."
    ]
    assert texts(page, "tr[id^='client-bank'] span.ok") == ["ok"]
    assert texts(page, "button.resume") == []
    page.screenshot(ARTIFACTS / "clients-resumed.png", whole=False)
    assert post(console_stack, "/v1/mail", mail, "bank")  # 202 again
    audit = [line for line in log_lines(console_stack) if "resume_client" in line]
    assert len(audit) == 1 and f"bank by {OPERATOR}" in audit[0]

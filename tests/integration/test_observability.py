"""Logs and metrics of the running stack: JSON lines, request ids, nothing secret, true totals."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
import requests

from tests.support.harness.clients import KEYS, QINIU
from tests.support.harness.stack import Stack, code_sent_to, log_lines, new_phone, verify
from tests.support.harness.wait import wait_for
from tests.support.peers.twilio import AUTH_TOKEN

pytestmark = pytest.mark.integration


def test_no_code_secret_or_personal_data_reaches_the_logs(stack: Stack) -> None:
    phone = new_phone()
    sent = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "leak"})
    code = code_sent_to(stack.twilio, phone)
    stack.wait_status(sent.json()["id"], "sent")
    assert (
        verify(stack, phone, "000000" if code != "000000" else "111111", "leak")["valid"] is False
    )
    assert verify(stack, phone, code, "leak") == {"valid": True}
    to = f"leak-{uuid.uuid4().hex[:8]}@example.com"
    stack.smtp.plan(to, f"451 4.2.0 <{to}> mailbox busy")  # an error that quotes the address
    mail = stack.post("/v1/mail", {"to": [to], "subject": "Secret subject", "text": "Secret body"})
    stack.wait_status(mail.json()["id"], "sent")
    output = "\n".join(log_lines(stack))
    assert "mailbox busy" in output  # the error was logged...
    secrets = [code, phone, phone[1:], to, "Secret subject", "Secret body", AUTH_TOKEN, *KEYS.values(),
               QINIU["qiniu_secret_key"]]  # fmt: skip
    secrets.append((stack_state(stack) / "captcha-secret").read_text())
    # Whole words only: a session's logs hold thousands of request ids and uuids in hex, and a
    # six-digit code turns up inside one now and then ("6978074a8d…").
    leaked = [
        s for s in secrets if re.search(rf"(?<![0-9A-Za-z]){re.escape(s)}(?![0-9A-Za-z])", output)
    ]
    assert leaked == [], f"in the logs: {leaked}"


def stack_state(stack: Stack) -> Path:
    return Path(stack.env["NOTIFIER_STATE_DIR"])


def test_logs_are_json_lines_and_the_request_id_follows_into_the_worker(stack: Stack) -> None:
    rid = f"trace-{uuid.uuid4().hex[:12]}"
    to = f"trace-{uuid.uuid4().hex[:8]}@example.com"
    response = requests.post(
        f"{stack.base}/v1/mail",
        json={"to": [to], "subject": "s", "text": "t"},
        headers={"Authorization": f"Bearer {KEYS['tester']}", "X-Request-Id": rid},
        timeout=10,
    )
    assert response.headers["X-Request-Id"] == rid
    notification_id = response.json()["id"]
    stack.wait_status(notification_id, "sent")

    def worker_line() -> dict[str, object] | None:
        for line in stack.worker.output().splitlines():
            if notification_id in line and "sent by" in line:
                found: dict[str, object] = json.loads(line)
                return found
        return None

    entry = wait_for(worker_line, what="the worker's log line of the mail")
    assert entry["request_id"] == rid
    assert entry["level"] == "INFO" and entry["logger"] == "notifier.services.delivery"
    access = [json.loads(line) for line in stack.web.output().splitlines() if rid in line]
    assert any(a["msg"] == "POST /v1/mail 202" for a in access)
    for line in log_lines(stack):
        if line.startswith("{"):
            json.loads(line)  # every structured line is one whole JSON object


def requests_counted(stack: Stack, route: str) -> float:
    text = requests.get(f"{stack.base}/metrics", timeout=10).text
    pattern = rf'notifier_http_requests_total\{{method="GET",route="{re.escape(route)}",status="200"\}} (\S+)'
    found = re.search(pattern, text)
    return float(found[1]) if found else 0.0


def test_metrics_add_up_across_gunicorn_workers(stack: Stack) -> None:
    before = requests_counted(stack, "/healthz")
    with requests.Session() as one, requests.Session() as other:
        for _ in range(15):  # two keep-alive connections: both gunicorn workers serve some
            one.get(f"{stack.base}/healthz", timeout=10)
            other.get(f"{stack.base}/healthz", timeout=10)
    assert requests_counted(stack, "/healthz") - before == 30
    text = requests.get(f"{stack.base}/metrics", timeout=10).text
    assert re.search(
        r'notifier_notifications_total\{kind="mail",mode="live",status="sent"\} [1-9]', text
    )
    assert re.search(
        r'notifier_delivery_attempts_total\{kind="sms_captcha",mode="live"\} [1-9]', text
    )
    assert "notifier_queue_depth" in text

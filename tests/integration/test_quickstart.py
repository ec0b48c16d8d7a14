"""The README's run command on a machine with nothing but Python: `notifier run`."""

from __future__ import annotations

import email
import email.policy
import json
import re
import signal
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from config import usable_cores
from notifier.embedded import free_port
from notifier.lanes import LANES
from tests.support.harness.processes import lanes_by_node, start_run, web_up
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


def test_run_starts_a_worker_a_core_serves_mail_into_the_outbox_and_stops_cleanly(
    tmp_path: Path,
) -> None:
    port = free_port()
    # From an empty folder with no settings at all: the embedded Redis, the API key and the
    # outbox all land in that folder.
    run = start_run(tmp_path, port)
    try:
        found = wait_for(
            lambda: re.search(r"development API key: (ntf_\S+)", run.output()), what="the API key"
        )
        headers = {"Authorization": f"Bearer {found[1]}"}
        base = f"http://127.0.0.1:{port}"
        web_up(run, base, "/readyz", timeout=60)
        # One worker a core, each its own Celery node serving every lane.
        cores = usable_cores()
        assert f"worker processes: {cores} (NOTIFIER_WORKER_PROCESSES)" in run.output()
        redis_url = (tmp_path / ".notifier" / "redis.url").read_text()
        host = socket.gethostname()
        nodes = {f"worker{k}@{host}" for k in range(1, cores + 1)}
        up = wait_for(
            lambda: (found := lanes_by_node(redis_url)).keys() == nodes and found,
            timeout=60,
            what=f"the nodes {sorted(nodes)}",
        )
        assert all(lanes == set(LANES) for lanes in up.values()), up
        body = {
            "to": ["ada@example.com"],
            "subject": "Hi from the quick start",
            "text": "It works.",
        }
        response = requests.post(f"{base}/v1/mail", json=body, headers=headers, timeout=10)
        assert response.status_code == 202, response.text
        notification_id = response.json()["id"]
        eml = tmp_path / "outbox" / f"{notification_id}.eml"
        wait_for(eml.exists, timeout=30, what="the mail in the outbox")
        message = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        assert message["Subject"] == "Hi from the quick start"
        # The worker writes the file, then records the send: on a busy machine the status can
        # still say sending a moment after the file is there.
        url = f"{base}/v1/notifications/{notification_id}"

        def recorded() -> dict[str, Any] | None:
            answer: dict[str, Any] = requests.get(url, headers=headers, timeout=10).json()
            return answer if answer["status"] == "sent" else None

        status = wait_for(recorded, what="the send to be recorded")
        assert status["provider"] == "outbox"
        captcha = {"phone": "+8613800138000", "purpose": "login"}
        response = requests.post(
            f"{base}/v1/sms/captcha", json=captcha, headers=headers, timeout=10
        )
        assert response.status_code == 202, response.text
        run.expect("SMS to +8613800138000: 【Notifier】您的验证码是")
        # The README's SMS notifications, posted as its curl posts them (-d, no JSON type).
        form = {"Content-Type": "application/x-www-form-urlencoded", **headers}
        texts: list[dict[str, Any]] = [
            {"to": "+8613800138000", "text": "Your parcel 1234 ships today."},
            {"to": "+8613800138000", "template": "shipped",
             "data": {"shop": "Acme", "order": "1234"}},
        ]  # fmt: skip
        for body in texts:
            response = requests.post(
                f"{base}/v1/sms", data=json.dumps(body), headers=form, timeout=10
            )
            assert response.status_code == 202, response.text
            notification_id = response.json()["id"]
            url = f"{base}/v1/notifications/{notification_id}"
            shown = wait_for(recorded, what="the SMS to be recorded sent")
        run.expect("SMS to +8613800138000: Your parcel 1234 ships today.")
        run.expect("SMS to +8613800138000: Acme: your parcel 1234 ships today.")
        assert (shown["kind"], shown["provider"], shown["segments"]) == ("sms", "console", 1)
    finally:
        code = run.stop(signal.SIGINT, timeout=30)
    assert code in (0, 130), run.output()[-2000:]
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1)
    import redis

    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(redis_url, socket_connect_timeout=0.5).ping()

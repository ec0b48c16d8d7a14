"""Scheduled mail on a fresh production machine: the Procfile's web, worker and beat.

The processes run from a fresh copy of the repository (no ``.notifier/``, nothing a developer's
runs left behind) with ``NOTIFIER_ENV=production``, as a new container or slug starts them.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from notifier.embedded import free_port
from tests.support.harness import procfile
from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.clients import api_clients, auth
from tests.support.harness.processes import Process, notifier_env, stop_all, web_up
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink

pytestmark = pytest.mark.integration


@dataclass
class Deploy:
    """The Procfile's processes running from ``folder``."""

    folder: Path
    env: dict[str, str]
    base: str
    smtp: SmtpSink
    before: set[str]
    processes: dict[str, Process] = field(default_factory=dict)
    beats: list[Process] = field(default_factory=list)

    def start_beat(self) -> Process:
        beat = procfile.start("beat", self.folder, self.env)
        beat.expect("is starting.")
        self.beats.append(beat)
        return beat

    def stop_beats(self) -> list[str]:
        """Stop every beat; what each one printed."""
        stop_all(self.beats)
        outputs = [beat.output() for beat in self.beats]
        self.beats.clear()
        return outputs

    def schedule(self, to: str, due: datetime) -> str:
        body = {"to": [to], "subject": "Later", "text": "Hello", "send_at": due.isoformat()}
        answer = requests.post(f"{self.base}/v1/mail", json=body, headers=auth(), timeout=10)
        assert answer.status_code == 202, answer.text
        assert answer.json()["status"] == "scheduled"
        found: str = answer.json()["id"]
        return found

    def status(self, notification_id: str) -> str:
        url = f"{self.base}/v1/notifications/{notification_id}"
        found: str = requests.get(url, headers=auth(), timeout=10).json()["status"]
        return found

    def gauge(self, name: str) -> float:
        text = requests.get(f"{self.base}/metrics", timeout=10).text
        line = next(line for line in text.splitlines() if line.startswith(name + " "))
        return float(line.split()[1])

    def dispatch_age(self) -> float:
        """Seconds since scheduled dispatch last ran."""
        return time.time() - self.gauge("notifier_scheduled_dispatch_last_run_timestamp_seconds")


@pytest.fixture(scope="module")
def deploy(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deploy]:
    """Web, worker and beat from a fresh copy, in production mode, against our Redis and SMTP."""
    redis, smtp = RedisServer(), SmtpSink()
    redis.start()
    smtp.start()
    folder = procfile.fresh_copy(tmp_path_factory.mktemp("fresh-clone"))
    assert not (folder / ".notifier").exists()
    port = free_port()
    settings: dict[str, Any] = {
        "env": "production",
        "redis_url": redis.url(0),
        "api_keys": json.dumps([c.model_dump(mode="json") for c in api_clients()]),
        "mail_server": "127.0.0.1",
        "mail_port": smtp.port,
        "mail_default_sender": "Notifier <noreply@example.com>",
        "sms_providers": "console",
        "captcha_secret": "a-production-secret-of-enough-length",
    }
    env = {**notifier_env(settings), "PORT": str(port)}
    running = Deploy(
        folder=folder,
        env=env,
        base=f"http://127.0.0.1:{port}",
        smtp=smtp,
        before=procfile.tree(folder),
    )
    try:
        # All three at once, as the Procfile starts them.
        running.processes["worker"] = worker = procfile.start("worker", folder, env)
        running.processes["web"] = web = procfile.start("web", folder, env)
        running.start_beat()
        worker.expect("ready.")
        web_up(web, running.base)
        yield running
    finally:
        stop_all([*running.beats, *running.processes.values()])
        smtp.stop()
        redis.stop()


def address(tag: str) -> str:
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def test_scheduled_mail_arrives_on_time_and_a_cancelled_one_never(deploy: Deploy) -> None:
    due = datetime.now(UTC) + timedelta(seconds=3)
    keep = deploy.schedule(address("later"), due)
    drop = deploy.schedule(address("never"), due)
    cancelled = requests.delete(
        f"{deploy.base}/v1/notifications/{drop}", headers=auth(), timeout=10
    )
    assert cancelled.status_code == 200
    wait_for(lambda: deploy.status(keep) == "sent", timeout=30, what="the scheduled mail")
    late = deploy.smtp.handler.arrivals[keep] - due.timestamp()
    assert 0 <= late < 2.5, f"arrived {late:.2f} s after its time"
    # Dispatch has run since the cancelled mail's time came: it would have gone by now.
    wait_for(
        lambda: deploy.dispatch_age() < time.time() - due.timestamp() - 1,
        what="a dispatch after the due time",
    )
    assert deploy.status(drop) == "cancelled"
    assert deploy.smtp.received(drop) == []


def test_nothing_was_written_into_the_working_directory(deploy: Deploy) -> None:
    wait_for(lambda: deploy.dispatch_age() < 2, what="beat to be dispatching")
    assert procfile.tree(deploy.folder) == deploy.before


def test_two_beats_send_each_scheduled_mail_exactly_once(deploy: Deploy) -> None:
    second = deploy.start_beat()
    try:
        # Far enough ahead that the last of the 20 is still in the future when it is posted on
        # a busy machine (each must be scheduled, for the beats to race over it).
        due = datetime.now(UTC) + timedelta(seconds=5)
        ids = [deploy.schedule(address(f"twice{i}"), due) for i in range(20)]
        wait_for(
            lambda: all(deploy.status(i) == "sent" for i in ids),
            timeout=60,
            what="20 scheduled mails to be sent",
        )
        # Both beats stay up and keep asking; give them a few more rounds to send a copy.
        seen = time.time()
        wait_for(lambda: deploy.dispatch_age() < time.time() - seen - 2, what="more dispatches")
        assert [len(deploy.smtp.received(i)) for i in ids] == [1] * 20
        assert second.alive()
    finally:
        deploy.beats.remove(second)
        second.stop()


def test_a_scheduled_batch_goes_out_on_time_through_a_relay_far_away(deploy: Deploy) -> None:
    deploy.smtp.handler.rcpt_delay = 0.05  # a relay 50 ms away
    try:
        due = datetime.now(UTC) + timedelta(seconds=3)
        recipients = rows(300, "prodbatch")
        accepted = post_batch(deploy.base, recipients, send_at=due.isoformat())
        assert accepted["status"] == "scheduled"
        done = wait_batch(deploy.base, accepted["id"], "done", timeout=60)
    finally:
        deploy.smtp.handler.rcpt_delay = 0.0
    assert done["counts"] == {"sent": 300}
    by_rcpt = deploy.smtp.by_recipient()
    assert [len(by_rcpt.get(r["to"], [])) for r in recipients] == [1] * 300
    first = min(deploy.smtp.handler.arrivals[i["id"]] for i in page(deploy, accepted["id"]))
    assert first >= due.timestamp()


def page(deploy: Deploy, batch_id: str) -> list[dict[str, Any]]:
    answer = requests.get(
        f"{deploy.base}/v1/batches/{batch_id}/notifications", headers=auth(), timeout=10
    )
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


@pytest.mark.soak
def test_the_staleness_signal_shows_a_stopped_beat_and_its_return(deploy: Deploy) -> None:
    wait_for(lambda: deploy.dispatch_age() < 2, what="dispatch to be fresh")
    assert deploy.gauge("notifier_scheduled_overdue_seconds") == 0
    for output in deploy.stop_beats():
        assert "Traceback" not in output, output[-3000:]
    due = datetime.now(UTC)
    waiting = deploy.schedule(address("stalled"), due + timedelta(seconds=1))
    wait_for(lambda: deploy.dispatch_age() > 5, what="the dispatch age to grow")
    wait_for(
        lambda: deploy.gauge("notifier_scheduled_overdue_seconds") > 2,
        what="the due mail to show as overdue",
    )
    assert deploy.status(waiting) == "scheduled"
    deploy.start_beat()
    wait_for(lambda: deploy.dispatch_age() < 2, what="dispatch to be fresh again")
    wait_for(lambda: deploy.status(waiting) == "sent", what="the waiting mail to go out")
    assert deploy.gauge("notifier_scheduled_overdue_seconds") == 0

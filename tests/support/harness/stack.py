"""The running stack of the integration tests, and what tests do through it."""

from __future__ import annotations

import json
import random
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.harness.clients import COS, OSS, QINIU, S3, api_clients, auth, gcs_settings
from tests.support.harness.processes import (
    BIN,
    Process,
    notifier_env,
    spawn_web,
    spawn_worker,
    start_worker,
    stop_all,
    web_up,
)
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio


@dataclass
class Stack:
    """A running Notifier and the peers it talks to."""

    base: str
    smtp: SmtpSink
    twilio: FakeTwilio
    web: Process
    worker: Process
    beat: Process
    env: dict[str, str]

    def stop(self) -> None:
        stop_all([self.web, self.beat, self.worker])

    def ensure_worker(self) -> None:
        """Start the worker again if a test stopped it and failed before it did: a session's
        stack serves the modules after it."""
        if not self.worker.alive():
            self.worker = start_worker(self.env)

    def post(self, path: str, body: Any, who: str = "tester", **kw: Any) -> requests.Response:
        return requests.post(f"{self.base}{path}", json=body, headers=auth(who), timeout=10, **kw)

    def get(self, path: str) -> requests.Response:
        return requests.get(f"{self.base}{path}", timeout=10)

    def get_as(self, path: str, who: str = "tester") -> requests.Response:
        """GET with ``who``'s key."""
        return requests.get(f"{self.base}{path}", headers=auth(who), timeout=10)

    def delete(self, path: str, who: str = "tester") -> requests.Response:
        return requests.delete(f"{self.base}{path}", headers=auth(who), timeout=10)

    def status(self, notification_id: str) -> dict[str, Any]:
        response = requests.get(
            f"{self.base}/v1/notifications/{notification_id}", headers=auth(), timeout=10
        )
        assert response.status_code == 200, response.text
        found: dict[str, Any] = response.json()
        return found

    def wait_status(
        self, notification_id: str, *wanted: str, timeout: float = 30
    ) -> dict[str, Any]:
        """Poll the status route until the status is one of ``wanted``."""
        return wait_for(
            lambda: (s := self.status(notification_id))["status"] in wanted and s,
            timeout=timeout,
            what=f"{notification_id} to be {' or '.join(wanted)}",
        )


def stack_settings(
    redis: RedisServer, smtp: SmtpSink, twilio: FakeTwilio, state: Path, db: int = 0
) -> dict[str, Any]:
    """NOTIFIER_* settings of the integration stack (fast retries, so tests are quick)."""
    return {
        "env": "testing",
        "redis_url": redis.url(db),
        "api_keys": json.dumps([c.model_dump(mode="json") for c in api_clients()]),
        "mail_provider": "smtp",
        "mail_server": "127.0.0.1",
        "mail_port": smtp.port,
        "mail_timeout": 5,
        "mail_default_sender": "Notifier <noreply@example.com>",
        "retry_base": 0.2,
        "retry_cap": 1,
        "retry_max": 8,
        # Tests post bursts (a backlog of mail); the limit itself has its own tests.
        "rate_limit": "1000/s",
        "state_dir": state,
        "sms_providers": "twilio",
        "twilio_account_sid": ACCOUNT_SID,
        "twilio_auth_token": AUTH_TOKEN,
        "twilio_from": FROM,
        "twilio_base_url": twilio.base_url,
        "twilio_timeout": 5,
        # The fraud guard on, as a careful operator runs it: the tests' numbers are Chinese and
        # American; US premium rate (+1 900) is never texted.
        "sms_allowed_countries": "CN,US",
        "sms_blocked_prefixes": "+1900",
        # Below two clients' daily limits for one phone or address (10 each), so a test
        # reaches it.
        "captcha_phone_daily_ceiling": 15,
        "captcha_address_daily_ceiling": 15,
        **QINIU,
        **S3,
        **OSS,
        **COS,
        **gcs_settings(state),
    }


def start_stack(
    settings: dict[str, Any],
    smtp: SmtpSink,
    twilio: FakeTwilio,
    env_more: Mapping[str, str] | None = None,
) -> Stack:
    """Start web, worker and beat with ``settings`` (and the other variables ``env_more``), all
    three at once as the Procfile does, and wait until each is ready (stopping them all if one is
    not)."""
    env = {**notifier_env(settings), **(env_more or {})}
    started: list[Process] = []
    try:
        worker = spawn_worker(env)
        started.append(worker)
        beat = Process("beat", [str(BIN / "celery"), "-A", "celery_app", "beat"], env)
        started.append(beat)
        web, base = spawn_web(env)
        started.append(web)
        worker.expect("ready.")
        beat.expect("is starting.")  # beat's banner; its INFO lines are kept quiet
        web_up(web, base)
    except BaseException:
        stop_all(started)
        raise
    return Stack(base=base, smtp=smtp, twilio=twilio, web=web, worker=worker, beat=beat, env=env)


def address(tag: str) -> str:
    """A recipient no other test uses."""
    return f"{tag}-{uuid.uuid4().hex[:8]}@example.com"


def send(stack: Stack, **body: object) -> str:
    """POST a mail (a plain "Hello" unless ``body`` says otherwise); return its id."""
    response = stack.post("/v1/mail", {"subject": "Hello", "text": "Plain", **body})
    assert response.status_code == 202, response.text
    notification_id: str = response.json()["id"]
    return notification_id


def log_lines(stack: Stack) -> list[str]:
    """Every line web, worker and beat have written so far."""
    return [line for p in (stack.web, stack.worker, stack.beat) for line in p.output().splitlines()]


def new_phone() -> str:
    """A valid Chinese mobile number no other test uses."""
    return f"+86138{random.randrange(10**8):08d}"


def verify(stack: Stack, phone: str, code: str, purpose: str = "login") -> dict[str, Any]:
    """Check ``code`` for ``phone`` through the verify route; return the answer."""
    response = stack.post(
        "/v1/sms/captcha/verify", {"phone": phone, "purpose": purpose, "code": code}
    )
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


def code_sent_to(twilio: FakeTwilio, phone: str) -> str:
    """Wait for a text to ``phone`` and read the six-digit code in the latest one."""
    texts = wait_for(lambda: twilio.texts_to(phone), what=f"a text to {phone}")
    found = re.search(r"\b(\d{6})\b", texts[-1])
    assert found, texts
    return found[1]


@dataclass
class Caller:
    """A client of the stack with a key of its own (one the stack's settings were given)."""

    stack: Stack
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def post(self, path: str, body: dict[str, Any]) -> str:
        """POST to a sending route; the id of the notification it accepted."""
        answer = requests.post(
            f"{self.stack.base}{path}", json=body, headers=self.headers, timeout=10
        )
        assert answer.status_code == 202, answer.text
        found: str = answer.json()["id"]
        return found

    def status(self, notification_id: str) -> dict[str, Any]:
        url = f"{self.stack.base}/v1/notifications/{notification_id}"
        answer = requests.get(url, headers=self.headers, timeout=10)
        assert answer.status_code == 200, answer.text
        found: dict[str, Any] = answer.json()
        return found

    def wait_status(
        self, notification_id: str, *wanted: str, timeout: float = 60
    ) -> dict[str, Any]:
        """Poll the status route until the status is one of ``wanted``."""
        return wait_for(
            lambda: (s := self.status(notification_id))["status"] in wanted and s,
            timeout=timeout,
            what=f"{notification_id} to be {' or '.join(wanted)}",
        )

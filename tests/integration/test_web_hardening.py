"""The web process against hostile or unlucky callers: slow clients, a frozen Redis, odd bodies.

A stack of its own (Redis, web and a worker as the Procfile starts them), since one test
freezes its Redis and another counts captcha sends per address.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import requests

from notifier.embedded import free_port
from tests.support.harness.clients import auth
from tests.support.harness.processes import (
    BIN,
    ROOT,
    Process,
    notifier_env,
    start_run,
    start_web,
    start_worker,
    stop_all,
    web_up,
)
from tests.support.harness.stack import stack_settings
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = pytest.mark.integration
IP_LIMIT = 2
PROMPT = 2.0  # seconds: what "answers promptly" means here


@dataclass
class Hardened:
    redis: RedisServer
    twilio: FakeTwilio
    web: Process
    base: str

    @property
    def address(self) -> tuple[str, int]:
        host, port = self.base.removeprefix("http://").split(":")
        return host, int(port)

    def post(self, path: str, body: Any, timeout: float = 10) -> requests.Response:
        url = f"{self.base}{path}"
        return requests.post(url, json=body, headers=auth(), timeout=timeout)

    def post_raw(self, path: str, data: bytes | str, **extra: str) -> requests.Response:
        headers = {**auth(), "Content-Type": "application/json", **extra}
        return requests.post(f"{self.base}{path}", data=data, headers=headers, timeout=10)

    def mail(self, timeout: float = 10) -> requests.Response:
        body = {"to": ["ada@example.com"], "subject": "Hardening", "text": "Hello"}
        return self.post("/v1/mail", body, timeout=timeout)

    def captcha(self, client_ip: str, phone: str | None = None) -> requests.Response:
        phone = phone or f"+86139{uuid.uuid4().int % 10**8:08d}"
        return self.post(
            "/v1/sms/captcha",
            {"phone": phone, "purpose": "login", "locale": "en", "client_ip": client_ip},
        )


@pytest.fixture(scope="module")
def hardened(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Hardened]:
    """Redis, web and a worker of this module's own."""
    redis, smtp, twilio = RedisServer(), SmtpSink(), FakeTwilio().start()
    redis.start()
    smtp.start()
    settings = stack_settings(redis, smtp, twilio, Path(tmp_path_factory.mktemp("hardening")))
    settings.update(captcha_ip_hourly_limit=IP_LIMIT, captcha_ttl=60)
    env = notifier_env(settings)
    worker = start_worker(env)
    web, base = start_web(env)
    yield Hardened(redis=redis, twilio=twilio, web=web, base=base)
    stop_all([web, worker])
    twilio.stop()
    smtp.stop()
    redis.stop()


def assert_problem(response: requests.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/problem+json"
    found: dict[str, Any] = response.json()
    assert found["status"] == status
    return found


def test_fifty_slow_clients_leave_healthz_and_mail_answering(hardened: Hardened) -> None:
    held: list[socket.socket] = []
    try:
        for _ in range(50):
            slow = socket.create_connection(hardened.address, timeout=5)
            slow.sendall(b"POST /v1/mail HTTP/1.1\r\nHost: notifier\r\nContent-Type: appl")
            held.append(slow)
        for _ in range(5):
            assert requests.get(f"{hardened.base}/healthz", timeout=PROMPT).status_code == 200
        assert hardened.mail(timeout=PROMPT).status_code == 202
    finally:
        for slow in held:
            slow.close()


def test_a_client_that_never_finishes_its_header_is_cut_off(hardened: Hardened) -> None:
    with socket.create_connection(hardened.address, timeout=30) as slow:
        slow.sendall(b"GET /healthz HTTP/1.1\r\nHost: notifier\r\n")
        started = time.monotonic()
        # The server closes the connection (an empty read) well before the test gives up.
        assert slow.recv(1024) == b""
        assert time.monotonic() - started < 15


def test_a_frozen_redis_is_503_in_about_two_seconds_and_healthz_never_waits(
    hardened: Hardened,
) -> None:
    assert hardened.redis.process is not None
    pid = hardened.redis.process.pid
    os.kill(pid, signal.SIGSTOP)
    try:
        with ThreadPoolExecutor(8) as pool:
            timed = list(pool.map(lambda _: timed_mail(hardened), range(8)))
            # Every POST is now waiting on Redis, yet liveness answers at once.
            for _ in range(3):
                started = time.monotonic()
                healthz = requests.get(f"{hardened.base}/healthz", timeout=PROMPT)
                assert healthz.status_code == 200
                assert time.monotonic() - started < 1
        for response, took in timed:
            assert_problem(response, 503)
            assert response.headers["Retry-After"] == "5"
            assert took < 3.5, f"503 took {took:.1f} s"
        started = time.monotonic()
        assert_problem(requests.get(f"{hardened.base}/readyz", timeout=10), 503)
        assert time.monotonic() - started < 3.5
    finally:
        os.kill(pid, signal.SIGCONT)
    wait_for(lambda: hardened.mail().status_code == 202, what="the web to accept again")


def timed_mail(hardened: Hardened) -> tuple[requests.Response, float]:
    started = time.monotonic()
    response = hardened.mail(timeout=15)
    return response, time.monotonic() - started


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def mail_with(data: str) -> str:
    return '{"to": ["a@example.com"], "text": "x", "data": {"a": ' + data + "}}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/mail", mail_with(nested(1000))),
        ("/v1/mail", mail_with(nested(300))),
        ("/v1/sms/captcha/verify", '{"phone": ' + nested(1000) + "}"),
        ("/v1/uploads/qiniu/token", '{"bucket": "avatars", "key": ' + nested(1000) + "}"),
        ("/v1/mail", mail_with("9" * 5000)),
        ("/v1/mail", mail_with("NaN")),
        ("/v1/mail", mail_with("-Infinity")),
        ("/v1/mail", mail_with("1e999999")),
    ],
    ids=[
        "deep-mail",
        "300-deep-mail",
        "deep-verify",
        "deep-upload",
        "huge-int",
        "nan",
        "infinity",
        "1e999999",
    ],
)
def test_bodies_that_are_not_plain_json_are_400(hardened: Hardened, path: str, body: str) -> None:
    assert_problem(hardened.post_raw(path, body), 400)


def test_a_body_nested_too_deeply_with_an_idempotency_key_is_400(hardened: Hardened) -> None:
    body = mail_with(nested(1000))
    key = {"Idempotency-Key": f"deep-{uuid.uuid4()}"}
    assert_problem(hardened.post_raw("/v1/mail", body, **key), 400)


def test_a_data_key_named_self_with_a_template_is_422(hardened: Hardened) -> None:
    body = {
        "to": ["ada@example.com"],
        "template": "welcome",
        "data": {"self": "x", "name": "Ada", "product": "Acme", "login_url": "https://a.example"},
    }
    problem = assert_problem(hardened.post("/v1/mail", body), 422)
    assert problem["errors"][0]["loc"][:2] == ["body", "data"]


def test_a_chunked_body_over_the_limit_is_413(hardened: Hardened) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"to": ["ada@example.com"], "text": "'
        for _ in range(40):
            yield b"x" * 32768
        yield b'"}'

    headers = {**auth(), "Content-Type": "application/json"}
    response = requests.post(f"{hardened.base}/v1/mail", data=chunks(), headers=headers, timeout=10)
    assert_problem(response, 413)


def test_gunicorn_s_own_refusals_are_problem_json(hardened: Hardened) -> None:
    long_uri = requests.get(f"{hardened.base}/healthz?{'q' * 5000}", timeout=10)
    assert_problem(long_uri, 414)
    big_header = requests.get(f"{hardened.base}/healthz", headers={"X-Big": "b" * 9000}, timeout=10)
    assert_problem(big_header, 431)


def test_captcha_address_limit_counts_mapped_ipv4_and_ipv6_by_64(hardened: Hardened) -> None:
    for _ in range(IP_LIMIT):
        assert hardened.captcha("198.51.100.7").status_code == 202
    refused = hardened.captcha("::ffff:198.51.100.7")
    assert_problem(refused, 429)
    assert int(refused.headers["Retry-After"]) > 0

    assert hardened.captcha("2001:db8:1:2::1").status_code == 202
    assert hardened.captcha("2001:db8:1:2:abcd::9").status_code == 202
    assert_problem(hardened.captcha("2001:db8:1:2:ffff:ffff:ffff:fffe"), 429)
    assert hardened.captcha("2001:db8:1:3::1").status_code == 202  # another /64


def test_the_english_captcha_text_says_1_minute(hardened: Hardened) -> None:
    phone = f"+86139{uuid.uuid4().int % 10**8:08d}"
    assert hardened.captcha("203.0.113.9", phone=phone).status_code == 202
    (text,) = wait_for(lambda: hardened.twilio.texts_to(phone), what="the captcha text")
    assert "expires in 1 minute." in text, text


def test_the_openapi_document_refuses_what_the_server_refuses(hardened: Hardened) -> None:
    document = requests.get(f"{hardened.base}/openapi.json", timeout=10).json()

    def allows(model: str, body: dict[str, Any]) -> bool:
        schema = {"$ref": f"#/components/schemas/{model}", "components": document["components"]}
        return bool(jsonschema_rs.validator_for(schema).is_valid(body))

    phone = {"phone": "", "purpose": "login"}
    assert_problem(hardened.post("/v1/sms/captcha", phone), 422)
    assert not allows("CaptchaRequest", phone)
    ip = {"phone": "+8613800138000", "purpose": "login", "client_ip": "not-an-address"}
    assert_problem(hardened.post("/v1/sms/captcha", ip), 422)
    assert not allows("CaptchaRequest", ip)
    verify = {"phone": "13800138000", "purpose": "login", "code": "1"}
    assert_problem(hardened.post("/v1/sms/captcha/verify", verify), 422)
    assert not allows("VerifyRequest", verify)
    # JSON has one kind of number: what the document calls an integer, the server takes as one.
    upload = {"bucket": "avatars", "key": "u/1.png", "expires_in": 1410.0, "fsize_limit": 1e3}
    assert allows("UploadTokenRequest", upload)
    response = hardened.post_raw("/v1/uploads/qiniu/token", json.dumps(upload))
    assert response.status_code == 200, response.text
    assert_problem(hardened.post("/v1/uploads/qiniu/token", {**upload, "expires_in": 60.5}), 422)
    assert not allows("UploadTokenRequest", {**upload, "expires_in": 60.5})


def test_a_configuration_error_hides_credentials_in_urls() -> None:
    env = notifier_env(
        {"env": "testing", "redis_url": "redis://:hunter2@127.0.0.1:1/0",
         "broker_url": "http://rabbit:s3cr3t-pw@127.0.0.1:1//", "api_keys": "[]"}
    )  # fmt: skip
    done = subprocess.run(
        [str(BIN / "gunicorn"), "notifier:create_app()", "--bind", "127.0.0.1:0"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    (line,) = [t for t in done.stderr.splitlines() if "notifier: configuration error" in t]
    assert "NOTIFIER_BROKER_URL" in line
    assert "s3cr3t-pw" not in done.stderr + done.stdout
    assert "hunter2" not in done.stderr + done.stdout
    assert "http://rabbit:***@127.0.0.1:1//" in line


def test_notifier_run_binds_loopback_unless_asked(tmp_path: Path) -> None:
    port = free_port()
    run = start_run(tmp_path, port)
    try:
        web_up(run, f"http://127.0.0.1:{port}", timeout=60)
        # 127.0.0.2 is loopback too, but not the address bound: an all-interfaces bind takes it.
        with pytest.raises(requests.ConnectionError):
            requests.get(f"http://127.0.0.2:{port}/healthz", timeout=1)
        assert re.search(rf"Notifier on http://127\.0\.0\.1:{port}", run.output())
    finally:
        run.stop(signal.SIGINT, timeout=30)

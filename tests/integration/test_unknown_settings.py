"""The Procfile's processes in production: a misspelled NOTIFIER_* variable stops each with one
line naming it and the nearest setting; the variables Kubernetes sets under the prefix do not."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from notifier.embedded import free_port
from tests.support.harness import procfile
from tests.support.harness.processes import ROOT, Process, notifier_env, stop_all, web_up
from tests.support.peers.redis_server import RedisServer

pytestmark = pytest.mark.integration

PRODUCTION = {
    "env": "production",
    "api_keys": "[]",
    "sms_providers": "console",
    "captcha_secret": "a-production-secret-of-enough-length",
    "mail_default_sender": "Notifier <noreply@example.com>",
}


@pytest.fixture
def production(redis_server: RedisServer) -> dict[str, str]:
    """A production environment that starts: the settings it requires, on the test Redis."""
    return {**notifier_env({**PRODUCTION, "redis_url": redis_server.url(2)}), "PORT": "0"}


@pytest.fixture
def started() -> Iterator[list[Process]]:
    """The processes a test started, stopped after it."""
    processes: list[Process] = []
    yield processes
    stop_all(processes)


@pytest.mark.parametrize("process", ["web", "worker", "beat"])
def test_a_misspelled_setting_stops_production_with_one_line(
    production: dict[str, str], started: list[Process], process: str
) -> None:
    env = {**production, "NOTIFIER_CAPTCHA_TTL_S": "600"}
    run = procfile.start(process, ROOT, env)
    started.append(run)
    assert run.popen.wait(timeout=60) == 2
    output = run.output()
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if "notifier: configuration" in line]
    assert errors == [
        "notifier: configuration error: NOTIFIER_CAPTCHA_TTL_S: unknown setting"
        " (did you mean NOTIFIER_CAPTCHA_TTL?)"
    ], output


def test_kubernetes_service_variables_leave_production_running(
    production: dict[str, str], started: list[Process]
) -> None:
    port = free_port()
    links = {
        "NOTIFIER_SERVICE_HOST": "10.0.0.11",
        "NOTIFIER_SERVICE_PORT": "8000",
        "NOTIFIER_PORT": "tcp://10.0.0.11:8000",
        "NOTIFIER_PORT_8000_TCP_ADDR": "10.0.0.11",
        "NOTIFIER_REDIS_PORT_6379_TCP": "tcp://10.0.0.12:6379",
    }
    web = procfile.start("web", ROOT, {**production, **links, "PORT": str(port)})
    started.append(web)
    web_up(web, f"http://127.0.0.1:{port}")
    assert "notifier: configuration" not in web.output()

"""The Procfile's processes: a bad setting stops each with one line, never a traceback."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.harness.processes import BIN, ROOT, notifier_env
from tests.support.peers.redis_server import RedisServer

pytestmark = pytest.mark.integration

# A DKIM key that is no key; its body must never be printed.
BAD_PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\nc2VjcmV0LWJ1dC1ub3Qta2V5\n-----END RSA PRIVATE KEY-----\n"
)

COMMANDS = {
    "web": [str(BIN / "gunicorn"), "notifier:create_app()", "--bind", "127.0.0.1:0"],
    "worker": [str(BIN / "celery"), "-A", "celery_app", "worker"],
    "beat": [str(BIN / "celery"), "-A", "celery_app", "beat"],
}


# A bad setting stops every process as the package loads (create_app, in gunicorn's master and
# in `celery -A celery_app`): worker and beat take the same path up to there, their subcommand
# not yet run. So the web and the worker meet every case, and beat the last check of the load
# (a DKIM key, BEAT_CASE): the one line, its exit code and no traceback, in beat's own process.
BAD = [
    ({"env": "production"}, "NOTIFIER_REDIS_URL: required in production"),
    (
        {"env": "testing", "redis_url": "redis://127.0.0.1:1/0", "api_keys": "{oops"},
        "NOTIFIER_API_KEYS: ",
    ),
    (
        {
            "env": "testing",
            "redis_url": "redis://127.0.0.1:1/0",
            "api_keys": "[]",
            "mail_provider": "pigeon",
        },
        "NOTIFIER_MAIL_PROVIDER: unknown provider 'pigeon'",
    ),
    (
        {
            "env": "testing",
            "redis_url": "redis://127.0.0.1:1/0",
            "api_keys": "[]",
            "dkim_keys": json.dumps({"example.com": {"selector": "s1", "private_key": BAD_PEM}}),
        },
        "NOTIFIER_DKIM_KEYS: example.com: the private key cannot sign",
    ),
]
BEAT_CASE = BAD[-1]


@pytest.mark.parametrize(
    ("process", "settings", "line"),
    [(process, *case) for case in BAD for process in ("web", "worker")] + [("beat", *BEAT_CASE)],
)
def test_bad_setting_stops_the_process_with_one_line(
    process: str, settings: dict[str, str], line: str, tmp_path: Path
) -> None:
    stops_with_one_line(process, settings, line, tmp_path)


def stops_with_one_line(process: str, settings: dict[str, str], line: str, state: Path) -> None:
    """Start ``process`` with ``settings`` (its state in ``state``): it exits 2 saying ``line``,
    and no traceback."""
    done = subprocess.run(
        COMMANDS[process],
        cwd=ROOT,
        # A state folder of the test's own: the checkout's .notifier/ is a developer's.
        env=notifier_env({**settings, "state_dir": state}),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr + done.stdout
    errors = [text for text in done.stderr.splitlines() if "notifier: configuration error" in text]
    assert len(errors) == 1, done.stderr
    assert "c2VjcmV0LWJ1dC1ub3Qta2V5" not in done.stderr + done.stdout
    assert f"notifier: configuration error: {line}" in errors[0]


@pytest.fixture(scope="module")
def evicting() -> Iterator[RedisServer]:
    """A Redis that evicts when full, as a managed one may be set up: allkeys-lru, with CONFIG
    renamed away (only INFO tells the policy)."""
    server = RedisServer(
        args=("--maxmemory-policy", "allkeys-lru", "--rename-command", "CONFIG", "")
    )
    server.start()
    yield server
    server.stop()


@pytest.mark.parametrize("process", ["web", "worker"])  # (beat as the worker: BAD's comment)
def test_a_redis_that_evicts_stops_a_production_start_with_one_line(
    process: str, evicting: RedisServer, tmp_path: Path
) -> None:
    """allkeys-lru silently lost 33 of 55 accepted mails (issue 35)."""
    settings = {
        "env": "production", "redis_url": evicting.url(), "api_keys": "[]",
        "sms_providers": "console", "captcha_secret": "0123456789abcdef0123",
        "mail_default_sender": "n@example.com",
    }  # fmt: skip
    stops_with_one_line(
        process,
        settings,
        "NOTIFIER_REDIS_URL: Redis's maxmemory-policy is allkeys-lru; it must be noeviction, "
        "or a full Redis drops accepted notifications without a word",
        tmp_path,
    )

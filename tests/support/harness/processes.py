"""The Procfile's processes, really started: gunicorn for ``web``, ``celery worker``."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import requests

from notifier.embedded import free_port
from tests.support.harness.wait import wait_for

ROOT = Path(__file__).resolve().parents[3]
BIN = Path(sys.executable).parent


def notifier_env(settings: Mapping[str, object]) -> dict[str, str]:
    """The environment for a process: ours, less any NOTIFIER_* of the caller, plus ``settings``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NOTIFIER_")}
    env.update({f"NOTIFIER_{k.upper()}": str(v) for k, v in settings.items()})
    env["PYTHONUNBUFFERED"] = "1"
    return env


def python_output(code: str, settings: Mapping[str, object]) -> str:
    """What ``python -c code`` prints, run in the repository with ``settings`` as its NOTIFIER_*
    variables (it must exit 0)."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=notifier_env(settings),
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


class Process:
    """A child process in its own process group, its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.name = name
        self.log = Path(tempfile.mkstemp(prefix=f"notifier-{name}-", suffix=".log")[1])
        with open(self.log, "wb") as out:
            self.popen = subprocess.Popen(
                argv,
                cwd=cwd,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def alive(self) -> bool:
        return self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        """Signal the whole group and wait; SIGKILL if it does not go."""
        stop_all([self], sig, timeout)
        return self.popen.returncode

    def children(self) -> list[int]:
        """The pids of this process's children (a celery worker's pool processes)."""
        pid = self.popen.pid
        found: list[int] = []
        for task in Path(f"/proc/{pid}/task").iterdir():
            found += [int(c) for c in (task / "children").read_text().split()]
        return found

    def expect(self, text: str, timeout: float = 30) -> None:
        """Wait until ``text`` shows in the output (the process must stay up)."""

        def seen() -> bool:
            if not self.alive() and text not in self.output():
                raise AssertionError(f"{self.name} exited:\n{self.output()[-3000:]}")
            return text in self.output()

        wait_for(seen, timeout=timeout, what=f"{self.name} to print {text!r}")


def stop_all(processes: Sequence[Process], sig: int = signal.SIGTERM, timeout: float = 20) -> None:
    """Signal every process's group at once, then wait for each; SIGKILL one that does not go
    within ``timeout``. (One after another, a stack's three would take the sum of their exits.)"""
    running = [process for process in processes if process.alive()]
    for process in running:
        os.killpg(process.popen.pid, sig)
    deadline = time.monotonic() + timeout
    for process in running:
        try:
            process.popen.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(process.popen.pid, signal.SIGKILL)
            process.popen.wait()


def spawn_worker(
    env: dict[str, str], concurrency: int | None = None, queues: str | None = None
) -> Process:
    """``celery -A celery_app worker``, started (``start_worker`` waits until it takes tasks): as
    many threads as the settings give a worker (the Procfile's default) unless ``concurrency``
    says otherwise; every lane unless ``queues`` names some (``-Q``)."""
    sized = [] if concurrency is None else ["--concurrency", str(concurrency)]
    sized += [] if queues is None else ["-Q", queues]
    return Process(
        "worker",
        [str(BIN / "celery"), "-A", "celery_app", "worker", "--loglevel", "INFO", *sized],
        env,
    )


def start_worker(
    env: dict[str, str], concurrency: int | None = None, queues: str | None = None
) -> Process:
    """A worker (``spawn_worker``), ready to take tasks."""
    worker = spawn_worker(env, concurrency, queues)
    worker.expect("ready.")
    return worker


def spawn_web(env: dict[str, str], port: int | None = None) -> tuple[Process, str]:
    """``gunicorn "notifier:create_app()"`` with the repository's config, started on ``port`` (a
    free one unless given: a web started again where it was); its base URL. ``web_up`` waits."""
    port = port or free_port()
    web = Process(
        "web",
        [str(BIN / "gunicorn"), "notifier:create_app()", "--bind", f"127.0.0.1:{port}"],
        env,
    )
    return web, f"http://127.0.0.1:{port}"


def start_web(env: dict[str, str], port: int | None = None) -> tuple[Process, str]:
    """A web (``spawn_web``), answering; its base URL."""
    web, base = spawn_web(env, port)
    web_up(web, base)
    return web, base


def web_up(web: Process, base: str, path: str = "/healthz", timeout: float = 30) -> None:
    """Wait until the web at ``base`` answers ``path`` with 200 (``web``, a process that serves
    it, must stay up meanwhile)."""

    def up() -> bool:
        if not web.alive():
            raise AssertionError(f"{web.name} exited:\n{web.output()[-3000:]}")
        try:
            return requests.get(f"{base}{path}", timeout=1).status_code == 200
        except (requests.ConnectionError, requests.Timeout):  # not up yet, or a busy machine
            return False

    wait_for(up, timeout=timeout, what=f"{web.name} to answer {path}")


def stop_group(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a server's whole process group, SIGKILL it if it hangs, then SIGKILL what is left.

    The last SIGKILL takes helpers still left in the group once the leader is gone; the group's
    id stays reserved while any member lives, so it cannot hit others.
    """
    if process.poll() is None:
        _signal_group(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(process.pid, signal.SIGKILL)
            process.wait()
    _signal_group(process.pid, signal.SIGKILL)


def stop_and_remove(
    process: subprocess.Popen[bytes] | None, directory: Path | None, timeout: float
) -> None:
    """Stop a server's process group (``stop_group``), then remove the folder it ran in."""
    if process is not None:
        stop_group(process, timeout)
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


def start_server(
    argv: list[str],
    *,
    output: Path,
    ready: Callable[[subprocess.Popen[bytes]], bool],
    what: str,
    timeout: float,
    logs: Sequence[Path],
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a server in its own process group and wait until ``ready(process)``; stop it if not.

    Its output goes to ``output``; a failure says why with the ends of ``logs``.
    """
    with open(output, "wb") as out:
        process = subprocess.Popen(
            argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for(lambda: ready(process), timeout=timeout, what=what)
    except AssertionError as e:
        stop_group(process, timeout=10)
        raise AssertionError(f"{e}\n{tails(logs)}") from None
    return process


def tails(paths: Sequence[Path], chars: int = 4000) -> str:
    """The ends of some log files, for failure messages."""
    parts = []
    for path in paths:
        try:
            text = path.read_text(errors="replace")
        except OSError as e:
            text = f"({e})"
        parts.append(f"--- {path} ---\n{text[-chars:]}")
    return "\n".join(parts)


def lanes_by_node(broker_url: str) -> dict[str, set[str]]:
    """The Celery nodes that answer on ``broker_url`` right now, each with the queues it serves
    (Celery's remote control: ``celery inspect active_queues``)."""
    from celery import Celery

    control = Celery(broker=broker_url, set_as_current=False).control
    answers = control.inspect(timeout=1.0).active_queues() or {}
    return {node: {q["name"] for q in queues} for node, queues in answers.items()}


def start_run(cwd: Path, port: int, *extra: str) -> Process:
    """``notifier run`` with the repository's Procfile, from ``cwd`` and no settings at all."""
    argv = [str(BIN / "notifier"), "run", "--port", str(port), "--procfile", str(ROOT / "Procfile")]
    return Process("run", [*argv, *extra], notifier_env({}), cwd=cwd)

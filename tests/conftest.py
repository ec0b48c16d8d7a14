"""Fixtures shared by unit and integration tests."""

from __future__ import annotations

import gc
import json
import os
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from tests.support.harness.clients import COS, OSS, QINIU, S3, api_clients, gcs_settings
from tests.support.peers import system
from tests.support.peers.redis_server import RedisServer

# The session's stacks of tests/integration/conftest.py that more than one module uses, and how
# many test workers (pytest-xdist) share the modules that use each: one start a worker.
SHARED_STACKS = {"stack": 2, "texting": 1, "callbacks": 1, "events": 1}


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """``--dist loadfile`` (pyproject.toml), but the modules that use one of the session's
    ``SHARED_STACKS`` go to as many workers as it says, in turn, where each worker that ran one
    of them started that stack (with ``stack``, all four of scripts/test --fast did): 3.5 s of
    CPU a start, web, worker and beat, and 0.3 s each half minute it idles. Only the workers know
    which modules use which: the first writes it down as it collects
    (``pytest_collection_modifyitems``), and the scheduler reads it when every worker has
    collected, as it splits the tests into modules."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling  # type: ignore[import-untyped]

    class ModuleOrStack(LoadFileScheduling):  # type: ignore[misc]
        groups: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self.groups is None:
                path = Path(_groups_file(config))
                self.groups = json.loads(path.read_text()) if path.exists() else {}
                path.unlink(missing_ok=True)
            module = nodeid.split("::", 1)[0]
            return self.groups.get(module, module)

    return ModuleOrStack(config, log)


def pytest_configure_node(node: Any) -> None:
    """Tell each worker (pytest-xdist) where to write the modules that use the session's
    shared stacks."""
    node.workerinput["stack_groups"] = _groups_file(node.config)


def _groups_file(config: pytest.Config) -> str:
    return str(Path(tempfile.gettempdir()) / f"notifier-stack-groups-{os.getpid()}.json")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """In the first test worker: write down which group each module that uses one of the
    session's ``SHARED_STACKS`` goes to (``pytest_xdist_make_scheduler``)."""
    worker = getattr(config, "workerinput", None)
    if not worker or worker["workerid"] != "gw0":
        return
    groups: dict[str, str] = {}
    users = dict.fromkeys(SHARED_STACKS, 0)
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module not in groups and (name := _shared_stack(item)):
            groups[module] = f"session {name} {users[name] % SHARED_STACKS[name]}"
            users[name] += 1
    Path(worker["stack_groups"]).write_text(json.dumps(groups))


def _shared_stack(item: pytest.Item) -> str | None:
    """Which of the session's ``SHARED_STACKS`` (tests/integration/conftest.py) ``item`` uses, if
    any (a module of its own may define a fixture of the same name)."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return None
    for name in SHARED_STACKS:
        if (defs := info.name2fixturedefs.get(name)) and defs[-1].scope == "session":
            return name
    return None


@pytest.hookimpl(wrapper=True)
def pytest_collection(session: pytest.Session) -> Generator[None, object, object]:
    """Collect with the garbage collector off, as the service's processes load (celery_app.py):
    collection makes most of the heap and frees little, and the collections its allocations
    set off walked it again and again, 0.35 of a test worker's 1.9 s of CPU to collect."""
    gc.disable()
    try:
        return (yield)
    finally:
        gc.enable()


@pytest.hookimpl(trylast=True)
def pytest_collection_finish(session: pytest.Session) -> None:
    """Leave what collection made (the test modules, the package, their libraries: most of the
    heap, kept to the end) out of every later garbage collection, as the service's processes do
    once up (notifier/celery_ext.py): each full collection a test's garbage set off walked all of
    it, about a tenth of the unit tests' CPU."""
    gc.freeze()


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tell the peers the test's markers, before its fixtures start any: the system packages it
    may run (tests/support/peers/system.py)."""
    system.marks = {mark.name for mark in item.iter_markers()}


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """A Redis server of this test run's own, for the whole session."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def fillable() -> Iterator[RedisServer]:
    """A Redis server of the test module's own, to fill (``fill``, ``free``) while the session's
    serves the other tests; each test leaves it with room again."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_settings(redis_server: RedisServer, tmp_path: Any) -> Callable[..., Settings]:
    """Build testing Settings on database 1 of the session's Redis (emptied first)."""
    import redis

    redis.Redis.from_url(redis_server.url(1)).flushdb()

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "env": "testing",
            "redis_url": redis_server.url(1),
            "api_keys": api_clients(),
            "mail_provider": "memory",
            "mail_default_sender": "Notifier <noreply@example.com>",
            "outbox_dir": tmp_path / "outbox",
            "state_dir": tmp_path / "state",
            **QINIU,
            **S3,
            **OSS,
            **COS,
            **gcs_settings(tmp_path),
        }
        if "mail_providers" in overrides:
            del values["mail_provider"]  # one or the other
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return make


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """The app on the test Redis with the in-memory mail provider."""
    return create_app(make_settings())


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A Flask test client of ``app``."""
    return app.test_client()

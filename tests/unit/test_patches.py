"""The canaries of notifier/patches: each fails the day a patched library changes under its patch.

Every patch overrides, or writes itself, private code of a library, checked against the version
its docstring names. Two kinds of canary say when that no longer holds: the source of each
private symbol a patch touches, hashed and compared with the hash recorded for the version
checked; and, where it is cheap, the library's behaviour that the patch relies on, run. When one
fails: read the library's new code, re-check the patch against it (docs/patches.md says why each
is there), then record the new version in the patch's docstring, the hashes here and the bound
in pyproject.toml.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import importlib.metadata
import inspect
import json
import logging
import pkgutil
import socket
import time
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

import pytest
import redis
from celery import Celery
from kombu import Connection, Producer, Queue
from kombu.common import ignore_errors
from kombu.exceptions import OperationalError
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

import notifier.patches
from tests.support.peers.redis_server import RedisServer

ROOT = Path(__file__).resolve().parents[2]
CANARY_DB = 5  # the kombu canaries' database on the session's Redis


@dataclass(frozen=True)
class Patch:
    """A patch's receipt: its module, the versions it was checked with and what it touches."""

    name: str  # notifier.patches.<name>
    checked: dict[str, str]  # distribution -> the version checked
    sources: dict[str, str]  # "module:Qualified.name" -> sha256 of its source (16 digits)

    @property
    def module(self) -> str:
        return f"notifier/patches/{self.name}.py"


PATCHES = (
    Patch(
        "kombu_redis",
        {"kombu": "5.7.0"},
        {
            "kombu.transport.redis:Channel._connparams": "e9a4295085a8fb90",
            "kombu.transport.redis:Channel._create_client": "dae92bc4075dafb9",
            "kombu.transport.redis:Channel.pool": "5a99b1533403c64d",
            "kombu.transport.redis:Channel.conn_or_acquire": "25883caca6c4121e",
            "kombu.transport.redis:Channel.close": "101e9b9cdad44b88",
            "kombu.transport.redis:SentinelChannel._get_pool": "6abc6e5c81e1880c",
            "kombu.transport.redis:QoS.ack": "1bc15a4ddf541af6",
            "kombu.transport.redis:QoS.reject": "747a02434344d1a6",
            "kombu.transport.redis:QoS._remove_from_indices": "980a109d54ad9136",
            "kombu.transport.virtual.base:QoS.ack": "0714292b916fecb2",
            "kombu.transport.redis:Channel._brpop_read": "c42518699709f2df",
            "kombu.transport.redis:Channel._brpop_start": "06723d707ddf2240",
            "kombu.transport.redis:Channel._flush_brpop_reauth": "bb4930b4fd3cf8f3",
            "kombu.transport.redis:Channel._q_for_pri": "f3997660680dd00f",
            "kombu.transport.redis:QoS.append": "35c655f6ecc62fe6",
            "kombu.transport.redis:QoS.restore_by_tag": "58e161d81b6fe18d",
            "kombu.transport.virtual.base:QoS.append": "b388f0cd6485c28a",
            "kombu.transport.virtual.base:QoS.can_consume_max_estimate": "936d3958266c68d3",
            "kombu.transport.virtual.base:Channel.basic_consume": "0fec962694938b61",
            "kombu.transport.virtual.base:Channel.qos": "44d9d4c8ab982419",
            "kombu.transport.redis:Transport.register_with_event_loop": "4b835642e4a99425",
            "kombu.asynchronous.hub:Hub.create_loop": "bc5b3f9d66b99d45",
            "kombu.utils.scheduling:round_robin_cycle": "99510a5cb38a5090",
        },
    ),
    Patch(
        "kombu_failover",
        {"kombu": "5.7.0", "celery": "5.7.0", "amqp": "5.4.2"},
        {
            "kombu.connection:Connection._connection_factory": "b96326e2ccccf0bc",
            "kombu.connection:Connection.maybe_switch_next": "4224624771e9d4cf",
            "kombu.connection:Connection.Pool": "047689e510e95865",
            "kombu.connection:ConnectionPool.new": "bfd71d1f6d0cf961",
            "kombu.connection:PooledConnection": "8fdd232eb72bd953",
            "kombu.connection:Connection._info": "d756812a39364a49",
            "kombu.connection:Connection._ensure_connection": "9928a72370fd028e",
            "kombu.connection:Connection.switch": "2b1f8abee4fecb28",
            "kombu.connection:Connection.collect": "36d622aa0b69908a",
            "celery.app.base:Celery._connection": "8c73001d4137b7e6",
            "kombu.connection:Connection.ensure": "7623780ddfbcafe7",
            "kombu.messaging:Producer.publish": "ae38a8777e397995",
            "amqp.channel:Channel.basic_publish_confirm": "4140656833f67489",
            "amqp.channel:Channel._basic_publish": "435fd18a6c885ecc",
            "amqp.abstract_channel:AbstractChannel.wait": "12a080a10e7c6a23",
        },
    ),
    Patch(
        "celery_consumer",
        {"celery": "5.7.0", "kombu": "5.7.0"},
        {
            "celery.worker.consumer.delayed_delivery:DelayedDelivery._validate_broker_urls": (
                "6be33aed7bf89b6e"
            ),
            "celery.worker.consumer.delayed_delivery:DelayedDelivery.start": "28f53fd4146ff3f7",
            "celery.worker.consumer.consumer:Consumer.ensure_connected": "3f79cf3bb6d6da8c",
            "kombu.connection:Connection.ensure_connection": "6eadd030fa740ae6",
            "celery.worker.consumer.consumer:Consumer.on_connection_error_before_connected": (
                "7297b2be735545d1"
            ),
            "celery.worker.consumer.consumer:Consumer.on_connection_error_after_connected": (
                "4f84dbfff329d28f"
            ),
            "celery.worker.consumer.consumer:Consumer.start": "53bd1abe3456722d",
            "celery.worker.consumer.consumer:Consumer.__init__": "c27ca6ec2d4bbfe4",
            "celery.worker.consumer.mingle:Mingle.__init__": "1b4339cd4174241e",
            "celery.worker.consumer.gossip:Gossip.__init__": "a38f7af7bdf4c760",
        },
    ),
    Patch(
        "redis_sentinel",
        {"redis": "8.2.0"},
        {
            "redis.sentinel:SentinelConnectionPool.__init__": "228ef39219d9a467",
            "redis.sentinel:SentinelConnectionPool.get_master_address": "19b9cb56c101f046",
            "redis.sentinel:SentinelConnectionPoolProxy.__init__": "3c8046e3a38348ed",
            "redis.sentinel:SentinelConnectionPoolProxy.get_master_address": "4270b1045b583c46",
            "redis.sentinel:SentinelManagedConnection.__init__": "cf133818b2aaf42c",
            "redis.sentinel:SentinelManagedConnection._connect_retry": "3c68be804dbb41a6",
        },
    ),
    Patch(
        "gunicorn_errors",
        {"gunicorn": "27.0.1"},
        {"gunicorn.util:write_error": "bd0143a03c15a2c8"},
    ),
    Patch(
        "gunicorn_boot",
        {"gunicorn": "27.0.1"},
        {
            "gunicorn.arbiter:Arbiter.spawn_worker": "6abc0d90b0b9f80b",
            "gunicorn.arbiter:Arbiter.signal": "8b193e95e16aa270",
            "gunicorn.workers.base:Worker.init_signals": "65442e0602b05f37",
            "gunicorn.workers.base:Worker.handle_exit": "e2f7159c426d379c",
            "gunicorn.workers.ggevent:GeventWorker.run": "50119854ef8be38c",
        },
    ),
    Patch(
        "flask_mail_timeout",
        {"flask-mail": "0.10.0"},
        {
            "flask_mail:Connection.configure_host": "93cc14cfe5b7cfc6",
            "flask_mail:Connection.__init__": "35ed9cb0ab6b0c16",
        },
    ),
    Patch("logging_teardown", {"gevent": "26.9.0", "gunicorn": "27.0.1"}, {}),
    Patch(
        "kombu_envelope",
        {"kombu": "5.7.0", "celery": "5.7.0"},
        {
            "kombu.transport.virtual.base:Channel.prepare_message": "40e1ae6d7753b659",
            "kombu.transport.virtual.base:Channel.basic_publish": "83825b6758712705",
            "kombu.transport.redis:Channel._put": "1c0cf9749576614c",
        },
    ),
)
SYMBOLS = [(patch, symbol) for patch in PATCHES for symbol in patch.sources]
BY_NAME = {patch.name: patch for patch in PATCHES}


def _resolve(symbol: str) -> Any:
    """The function or class ``module:Qualified.name`` names, as its source defines it."""
    module, _, path = symbol.partition(":")
    found: Any = importlib.import_module(module)
    for name in path.split("."):
        found = inspect.getattr_static(found, name)
    if isinstance(found, property):
        return found.fget
    if isinstance(found, functools.cached_property):
        return found.func
    return found


def source_hash(symbol: str) -> str:
    """The first 16 hex digits of the SHA-256 of ``symbol``'s source."""
    return hashlib.sha256(inspect.getsource(_resolve(symbol)).encode()).hexdigest()[:16]


def _re_check(patch: Patch | str) -> str:
    """What to do when the library under ``patch`` changed."""
    patch = BY_NAME[patch] if isinstance(patch, str) else patch
    checked = ", ".join(f"{dist} {version}" for dist, version in patch.checked.items())
    return (
        f"the library under {patch.module} changed (it was checked with {checked}): re-check "
        f"the patch against the installed version (docs/patches.md says why it is there), then "
        f"record that version in its docstring, the hashes in tests/unit/test_patches.py and "
        f"the bound in pyproject.toml"
    )


def test_every_patch_has_its_receipt_here() -> None:
    modules = {m.name for m in pkgutil.iter_modules(notifier.patches.__path__)}
    assert modules == {patch.name for patch in PATCHES}


@pytest.mark.parametrize("patch", PATCHES, ids=lambda patch: patch.name)
def test_each_patch_names_what_it_touches_the_versions_checked_and_upstream(patch: Patch) -> None:
    doc = importlib.import_module(f"notifier.patches.{patch.name}").__doc__ or ""
    for field in ("- Touches:", "- Checked with:", "- Upstream:", "- Canary:"):
        assert field in doc, f"{patch.module}'s docstring has no {field!r}"
    for dist, version in patch.checked.items():
        assert f"{dist} {version}".lower() in doc.lower(), f"{patch.module} names no {dist}"
    for symbol in patch.sources:
        assert symbol.partition(":")[2] in doc, f"{patch.module} does not name {symbol}"


@pytest.mark.parametrize("patch", PATCHES, ids=lambda patch: patch.name)
def test_the_library_under_each_patch_is_the_version_checked(patch: Patch) -> None:
    for dist, version in patch.checked.items():
        installed = importlib.metadata.version(dist)
        assert installed == version, f"{dist} {installed} is installed: {_re_check(patch)}"


@pytest.mark.parametrize(("patch", "symbol"), SYMBOLS, ids=[symbol for _, symbol in SYMBOLS])
def test_the_code_under_each_patch_is_the_code_checked(patch: Patch, symbol: str) -> None:
    found = source_hash(symbol)
    assert found == patch.sources[symbol], (
        f"{symbol} changed (its source hashes to {found} now): {_re_check(patch)}"
    )


def test_each_patched_library_is_capped_just_above_the_version_checked() -> None:
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    requirements = {canonicalize_name(r.name): r for r in map(Requirement, declared)}
    checked = {dist: Version(v) for patch in PATCHES for dist, v in patch.checked.items()}
    for dist, version in checked.items():
        requirement = requirements[canonicalize_name(dist)]
        next_minor = Version(f"{version.major}.{version.minor + 1}")
        caps = [Version(s.version) for s in requirement.specifier if s.operator == "<"]
        assert version in requirement.specifier, f"{requirement} leaves out {version}"
        assert caps and max(caps) <= next_minor, (
            f"{requirement} lets in a version no patch was checked with: cap it at <{next_minor}"
        )


# kombu_redis


@pytest.fixture
def canary_redis(redis_server: RedisServer) -> Any:
    """The URL of a database of the session's Redis kept for these canaries (emptied after)."""
    yield redis_server.url(CANARY_DB)
    redis.Redis.from_url(redis_server.url(CANARY_DB)).flushdb()


def _channel_holding_a_message(url: str, transport: type) -> tuple[Connection, Any]:
    """A kombu channel on ``transport`` with one message delivered and not acknowledged."""
    conn = Connection(url, transport=transport)
    channel: Any = conn.channel()
    Producer(channel).publish({"n": 1}, routing_key="canary", declare=[Queue("canary")])
    assert channel.basic_get("canary", no_ack=False) is not None
    return conn, channel


def test_kombu_still_breaks_closing_a_channel_its_transport_let_go_and_ours_does_not(
    canary_redis: str,
) -> None:
    from kombu.transport import redis as kombu_redis

    from notifier.patches import kombu_redis as ours

    conn, channel = _channel_holding_a_message(canary_redis, kombu_redis.Transport)
    channel.connection.client = None  # what kombu's Connection does when it lets go
    try:
        ignore_errors(conn, channel.close)
    except AttributeError:
        pass
    else:
        pytest.fail(
            f"kombu closes such a channel quietly now (the fix may go): {_re_check('kombu_redis')}"
        )
    conn, channel = _channel_holding_a_message(canary_redis, ours.Transport)
    channel.connection.client = None
    ignore_errors(conn, channel.close)  # a connection error, which the close ignores


def test_kombu_still_makes_a_client_a_command_and_ours_keeps_one(canary_redis: str) -> None:
    from kombu.transport import redis as kombu_redis

    from notifier.patches import kombu_redis as ours

    for transport, kept in ((kombu_redis.Transport, False), (ours.Transport, True)):
        with Connection(canary_redis, transport=transport) as conn:
            channel: Any = conn.channel()
            with channel.conn_or_acquire() as first, channel.conn_or_acquire() as second:
                assert (first is second) is kept, (
                    f"{transport.__module__}: {_re_check('kombu_redis')}"
                )


def test_kombu_still_cannot_acknowledge_on_a_full_redis_and_ours_can(
    fillable: RedisServer,
) -> None:
    """Redis up to 7.2 (the suite's is 6.2) refuses every command of a MULTI while full: kombu's
    acknowledgement failed, and Celery restarted its consumer for it while Redis stayed full."""
    from kombu.transport import redis as kombu_redis

    from notifier.patches import kombu_redis as ours

    state = redis.Redis.from_url(fillable.url())
    for transport, acknowledges in ((kombu_redis.Transport, False), (ours.Transport, True)):
        state.flushdb()
        with Connection(fillable.url(), transport=transport) as conn:
            channel: Any = conn.channel()
            for n in (1, 2):
                Producer(channel).publish({"n": n}, routing_key="canary", declare=[Queue("canary")])
            acked, rejected = (channel.basic_get("canary", no_ack=False) for _ in range(2))
            assert state.hlen("unacked") == 2
            fillable.fill()
            try:
                with pytest.raises(redis.OutOfMemoryError):
                    state.set("anything", "new")  # full indeed
                try:
                    acked.ack()
                    rejected.reject(requeue=False)
                    refused = False
                except redis.ResponseError:
                    refused = True
            finally:
                fillable.free()
            assert refused is not acknowledges, (
                f"{transport.__module__}: {_re_check('kombu_redis')}"
            )
            if acknowledges:
                assert state.hlen("unacked") == 0 and state.zcard("unacked_index") == 0


def _read_brpop(channel: Any, times: int) -> None:
    """What the worker's event loop does when BRPOP's answer comes, ``times`` over."""
    # The loop's poller gives the channel's client its connection first.
    channel.client.connection = channel.client.connection_pool.get_connection()
    for _ in range(times):
        channel._brpop_start()
        channel._brpop_read()


def test_a_message_brpop_took_is_recorded_and_handed_out_on_a_full_redis(
    fillable: RedisServer,
) -> None:
    """BRPOP takes the message off its list (a read: a full Redis allows it); the script that
    records it must run too, or the message is gone (FETCH opens with a write needing no
    memory, as settle.lua does)."""
    from notifier.patches import kombu_redis as ours

    state = redis.Redis.from_url(fillable.url(), decode_responses=True)
    state.flushdb()
    got: list[Any] = []
    with Connection(fillable.url(), transport=ours.Transport) as conn:
        channel: Any = conn.channel()
        queue = Queue("callbacks", routing_key="callbacks")
        for n in (1, 2):
            Producer(channel).publish({"n": n}, routing_key="callbacks", declare=[queue])
        channel.basic_qos(0, 10, False)
        channel.basic_consume("callbacks", False, lambda m: got.append(m.payload), "tag")
        fillable.fill()
        try:
            with pytest.raises(redis.OutOfMemoryError):
                state.set("anything", "new")  # full indeed
            _read_brpop(channel, times=1)
        finally:
            fillable.free()
        assert sorted(body["n"] for body in got) == [1, 2]
        # Recorded as unacknowledged (the channel's close puts them back on their list).
        assert state.hlen("unacked") == 2 and state.llen("callbacks") == 0


def _fetched(url: str, transport: type, reads: int) -> tuple[list[tuple[str, Any]], dict[str, Any]]:
    """Five messages on two queues (three on ``a``, one of them with a priority, two on ``b``)
    read through ``transport``'s BRPOP handler ``reads`` times, the consumer having room for
    ten: (queue, body) in the order handed out, and the unacknowledged records."""
    state = redis.Redis.from_url(url, decode_responses=True)
    state.flushdb()
    got: list[tuple[str, Any]] = []
    with Connection(url, transport=transport) as conn:
        channel: Any = conn.channel()
        queues = [Queue("a", routing_key="a"), Queue("b", routing_key="b")]
        producer = Producer(channel)
        for n, (queue, priority) in enumerate([("a", 0), ("a", 0), ("b", 0), ("a", 5), ("b", 0)]):
            producer.publish({"n": n}, routing_key=queue, declare=queues, priority=priority)
        channel.basic_qos(0, 10, False)
        for queue in ("a", "b"):
            channel.basic_consume(
                queue, False, lambda m, q=queue: got.append((q, m.payload)), f"tag-{queue}"
            )
        _read_brpop(channel, times=reads)
        records = {tag: json.loads(record) for tag, record in state.hgetall("unacked").items()}
        unacked = set(state.zrange("unacked_index", 0, -1))
        assert unacked == set(records)
        return got, {r[0]["properties"]["delivery_tag"]: r for r in records.values()}


def test_ours_takes_in_one_read_what_kombus_reads_take_one_by_one_and_records_each_alike(
    canary_redis: str,
) -> None:
    """kombu's BRPOP handler takes one message a read (a round trip to record it, one for the
    next BRPOP); ours takes as many as the consumer has room for in one, in the same order
    (kombu's round robin, priority steps), each recorded as kombu records it."""
    from kombu.transport import redis as kombu_redis

    from notifier.patches import kombu_redis as ours

    theirs, their_records = _fetched(canary_redis, kombu_redis.Transport, reads=5)
    mine, my_records = _fetched(canary_redis, ours.Transport, reads=1)
    assert [(q, body["n"]) for q, body in theirs] == [
        ("a", 0),
        ("b", 2),
        ("a", 1),
        ("b", 4),
        ("a", 3),
    ], f"kombu hands out in another order now: {_re_check('kombu_redis')}"
    assert mine == theirs
    assert len(my_records) == len(their_records) == 5

    def comparable(records: dict[str, Any]) -> list[Any]:
        # The tags are each publish's own; the rest of each record is the same.
        return sorted(
            json.dumps([r[0]["body"], r[0]["headers"], r[1], r[2]], sort_keys=True)
            for r in records.values()
        )

    assert comparable(my_records) == comparable(their_records)


@contextlib.contextmanager
def _ours_with(url: str, messages: int) -> Iterator[tuple[redis.Redis, Connection, Any]]:
    """A channel of our transport on an emptied database, with ``messages`` published to
    ``canary`` (``{"n": 0}``, ``{"n": 1}``…): the database, the connection and the channel."""
    from notifier.patches import kombu_redis as ours

    state = redis.Redis.from_url(url)
    state.flushdb()
    with Connection(url, transport=ours.Transport) as conn:
        channel: Any = conn.channel()
        for n in range(messages):
            Producer(channel).publish(
                {"n": n}, routing_key="canary", declare=[Queue("canary", routing_key="canary")]
            )
        yield state, conn, channel


def test_ours_takes_no_more_than_the_consumer_has_room_for(canary_redis: str) -> None:
    got: list[Any] = []
    with _ours_with(canary_redis, messages=5) as (state, _, channel):
        channel.basic_qos(0, 3, False)
        channel.basic_consume("canary", False, lambda m: got.append(m.payload["n"]), "tag")
        _read_brpop(channel, times=1)
        assert got == [0, 1, 2]
        assert state.llen("canary") == 2 and state.hlen("unacked") == 3


def _on_a_loop(transport: Any) -> list[tuple[float, Any]]:
    """Make ``transport`` think this thread runs its event loop; the timers it asks for."""
    timers: list[tuple[float, Any]] = []
    transport.loop = SimpleNamespace(call_later=lambda delay, call: timers.append((delay, call)))
    transport._on_tick()
    return timers


def test_acknowledgements_on_the_loops_thread_are_written_together_soon_after(
    canary_redis: str,
) -> None:
    from notifier.patches import kombu_redis as ours

    with _ours_with(canary_redis, messages=4) as (state, conn, channel):
        first, second, third, fourth = (channel.basic_get("canary", no_ack=False) for _ in range(4))
        first.ack()  # not on the loop's thread (there is no loop): written at once
        assert state.hlen("unacked") == 3
        timers = _on_a_loop(conn.transport)
        second.ack()
        third.ack()
        assert state.hlen("unacked") == 3 and state.zcard("unacked_index") == 3
        [(delay, write)] = timers  # one timer for both
        assert delay == ours.ACKS_WAIT
        write()
        assert state.hlen("unacked") == 1 and state.zcard("unacked_index") == 1
        fourth.ack()  # left for the close to write
    assert state.hlen("unacked") == 0 and state.zcard("unacked_index") == 0


def test_acknowledgements_waiting_go_with_the_next_fetch(canary_redis: str) -> None:
    got: list[Any] = []
    with _ours_with(canary_redis, messages=3) as (state, conn, channel):
        channel.basic_qos(0, 10, False)
        first, second = (channel.basic_get("canary", no_ack=False) for _ in range(2))
        _on_a_loop(conn.transport)
        first.ack()
        second.ack()
        channel.basic_consume("canary", False, got.append, "tag")
        _read_brpop(channel, times=1)
        assert [m.payload["n"] for m in got] == [2]
        [tag] = state.hkeys("unacked")  # the two acknowledged are gone with the fetch
        assert tag == got[0].delivery_tag.encode() and state.zcard("unacked_index") == 1
        assert not channel.qos.acknowledged


def test_while_a_backlog_waits_ours_takes_without_a_brpop_until_the_lists_are_empty(
    canary_redis: str,
) -> None:
    got: list[Any] = []
    with _ours_with(canary_redis, messages=5) as (state, conn, channel):
        channel.basic_qos(0, 2, False)
        channel.basic_consume("canary", False, got.append, "tag")
        _on_a_loop(conn.transport)
        _read_brpop(channel, times=1)  # two taken: all the room there was
        for message in got:
            message.ack()
        channel._brpop_start()  # room again: taken straight away, no BRPOP sent
        assert [m.payload["n"] for m in got] == [0, 1, 2, 3] and not channel._in_poll
        assert state.hlen("unacked") == 2  # the acknowledgements went with the take
        for message in got[2:]:
            message.ack()
        channel._brpop_start()  # the last one, and room left: BRPOP waits for the next
        assert [m.payload["n"] for m in got] == [0, 1, 2, 3, 4] and channel._in_poll
        assert state.hlen("unacked") == 1 and state.llen("canary") == 0


# kombu_failover


def test_kombu_moves_on_through_maybe_switch_next_and_celery_connects_through_ours(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from notifier.patches import kombu_failover
    from notifier.patches.kombu_failover import FailoverConnection

    monkeypatch.setattr(kombu_failover, "_failed", {})
    nodes = "amqp://127.0.0.1:1//;amqp://127.0.0.1:2//"  # nothing listens: refused at once
    with contextlib.suppress(OperationalError):
        FailoverConnection(nodes).ensure_connection(
            max_retries=1, interval_start=0, interval_step=0, interval_max=0
        )
    # The refusal went through ours, which remembers the node.
    assert ("127.0.0.1", 1) in kombu_failover._failed, _re_check("kombu_failover")

    celery = Celery(set_as_current=False, broker=nodes)
    celery.amqp.Connection = FailoverConnection  # as celery_ext does for RabbitMQ
    assert isinstance(celery.connection_for_write(), FailoverConnection), _re_check(
        "kombu_failover"
    )
    with celery.pool.acquire(block=False) as pooled:  # Celery's producers' pool
        assert isinstance(pooled, FailoverConnection), _re_check("kombu_failover")


# celery_consumer


def test_celery_sets_up_delayed_delivery_on_each_url_of_what_ours_returns_once() -> None:
    from celery.worker.consumer import Consumer as CeleryConsumer

    from notifier.patches.celery_consumer import ClusterDelayedDelivery

    delayed = [s for s in CeleryConsumer.Blueprint.default_steps if s.endswith(":DelayedDelivery")]
    assert delayed == ["celery.worker.consumer.delayed_delivery:DelayedDelivery"], _re_check(
        "celery_consumer"
    )
    nodes = "amqp://mq1//;amqp://mq2//;amqp://mq3//"
    celery = Celery(set_as_current=False, broker=nodes)
    # One connection through kombu's failover list.
    assert celery.connection_for_write(url=nodes).alt == nodes.split(";"), _re_check(
        "celery_consumer"
    )
    step: Any = ClusterDelayedDelivery.__new__(ClusterDelayedDelivery)  # the step, no consumer
    set_up: list[str] = []
    step._validate_configuration = lambda app: None
    step._setup_delayed_delivery = lambda c, url: set_up.append(url)
    step.start(SimpleNamespace(app=celery))
    assert set_up == [nodes], _re_check("celery_consumer")


def test_our_consumer_starts_without_mingle_and_gossip_and_keeps_heartbeat_and_control() -> None:
    """What `celery worker --without-mingle --without-gossip` turns off, whatever the command
    line said: Celery's own consumer, given the same options, keeps both on."""
    from celery.worker.consumer import Consumer as CeleryConsumer

    from notifier.patches.celery_consumer import Consumer

    app = Celery(set_as_current=False, broker="redis://127.0.0.1:1/0")  # never connected

    def steps(consumer_class: type[CeleryConsumer]) -> dict[str, bool | None]:
        consumer = consumer_class(
            lambda *args: None,
            app=app,
            hostname="worker@test",
            controller=SimpleNamespace(use_eventloop=True, state=None),
            worker_options={"without_mingle": False, "without_gossip": False},  # the CLI's
        )
        return {type(step).__name__: step.enabled for step in consumer.blueprint.steps.values()}

    celerys, ours = steps(CeleryConsumer), steps(Consumer)
    assert celerys["Mingle"] and celerys["Gossip"], _re_check("celery_consumer")
    assert not ours["Mingle"] and not ours["Gossip"], _re_check("celery_consumer")
    assert ours["Heart"] and ours["Control"] and ours["Tasks"]


def test_celery_reconnects_through_ensure_connection_with_the_pauses_ours_gives() -> None:
    from notifier.patches.celery_consumer import RECONNECT, Consumer

    consumer = Consumer.__new__(Consumer)  # the one method, without a whole worker
    consumer.app = Celery(set_as_current=False)
    consumer.app.conf.broker_connection_max_retries = None
    consumer.first_connection_attempt = False
    consumer.broker_connection_retry_attempt = 0
    asked: dict[str, Any] = {}

    class Broker:
        def ensure_connection(self, *args: Any, **kwargs: Any) -> Broker:
            asked.update(kwargs)
            return self

    broker = Broker()
    assert consumer.ensure_connected(broker) is broker
    # Our pauses, not overridden by pauses of Celery's own.
    assert {name: asked[name] for name in RECONNECT} == RECONNECT, _re_check("celery_consumer")


def test_a_start_a_refusing_redis_failed_is_waited_out_and_said_once_not_celerys_error(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Celery's start calls these hooks after each failed start, then restarts at once: more
    than five restarts a second it logs at CRITICAL, as a full Redis made a worker do."""
    from notifier.patches import celery_consumer
    from notifier.patches.celery_consumer import Consumer

    monkeypatch.setattr(celery_consumer, "REFUSED_WAIT", 0.05)
    consumer: Any = Consumer.__new__(Consumer)  # the hooks, without a whole worker
    consumer.conninfo = Connection("redis://127.0.0.1:1/0")
    full = redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    with caplog.at_level(logging.INFO, logger="celery.worker.consumer.consumer"):
        started = time.monotonic()
        for _ in range(3):
            consumer.on_connection_error_before_connected(full)
        assert time.monotonic() - started >= 3 * 0.05  # a wait a try
        assert [(r.name, r.levelname) for r in caplog.records] == [
            ("notifier.patches.celery_consumer", "WARNING")  # once a minute, not a try
        ]
        consumer.on_connection_error_before_connected(redis.ConnectionError("refused"))
    # An unreachable broker is Celery's to handle, as before.
    assert caplog.records[-1].levelname == "ERROR", _re_check("celery_consumer")


# redis_sentinel


def test_redis_py_asks_the_pools_proxy_for_the_primary_and_ours_counts_its_moves() -> None:
    from redis.sentinel import Sentinel

    from notifier.patches.redis_sentinel import FollowingPool

    class Sentinels:
        primary = ("10.0.0.1", 6379)

        def discover_master(self, service_name: str) -> tuple[str, int]:
            return self.primary

    sentinels = Sentinels()
    pool: Any = FollowingPool("notifier", cast(Sentinel, sentinels))
    connection = pool.make_connection()  # not connected: nothing listens there
    # Where the connection will ask for the primary: our counting proxy.
    assert connection.connection_pool is pool.counted, _re_check("redis_sentinel")
    assert connection.connection_pool.get_master_address() == ("10.0.0.1", 6379)
    assert pool.moves == 0
    sentinels.primary = ("10.0.0.2", 6379)
    assert pool.get_master_address() == ("10.0.0.2", 6379)
    assert pool.moves == 1, _re_check("redis_sentinel")


# gunicorn_errors


def test_gunicorn_writes_its_own_refusals_through_ours(monkeypatch: pytest.MonkeyPatch) -> None:
    from gunicorn import util  # type: ignore[import-untyped]
    from gunicorn.http.errors import LimitRequestLine  # type: ignore[import-untyped]
    from gunicorn.workers.base import Worker  # type: ignore[import-untyped]
    from gunicorn.workers.ggevent import GeventWorker  # type: ignore[import-untyped]

    from notifier.patches.gunicorn_errors import answer_refusals_with

    monkeypatch.setattr(util, "write_error", util.write_error)  # gunicorn's, back after
    answer_refusals_with(lambda status, reason, detail: f"{status} {reason}: {detail}".encode())
    assert GeventWorker.handle_error is Worker.handle_error, _re_check("gunicorn_errors")
    worker = SimpleNamespace(log=logging.getLogger("canary"))  # what handle_error uses of it
    ours, theirs = socket.socketpair()
    with ours, theirs:
        Worker.handle_error(worker, None, ours, ("192.0.2.1", 1), LimitRequestLine(5000, 4094))
        answer = theirs.recv(4096)
        assert answer.startswith(b"414 URI Too Long: "), (
            f"{answer!r}: {_re_check('gunicorn_errors')}"
        )


# flask_mail_timeout


def test_flask_mail_keeps_the_settings_where_our_connection_reads_them() -> None:
    from flask_mail import Mail

    from notifier.patches.flask_mail_timeout import TimedConnection

    settings = {
        "MAIL_SERVER": "mx.example.com",
        "MAIL_PORT": 2525,
        "MAIL_USERNAME": "user",
        "MAIL_PASSWORD": "secret",
        "MAIL_USE_TLS": True,
        "MAIL_USE_SSL": False,
    }
    connection = TimedConnection(Mail().init_mail(settings), timeout=1.5)
    read = ("server", "port", "username", "password", "use_tls", "use_ssl")
    kept = [getattr(connection.mail, name, None) for name in read]
    assert kept == list(settings.values()), _re_check("flask_mail_timeout")
    assert connection.timeout == 1.5

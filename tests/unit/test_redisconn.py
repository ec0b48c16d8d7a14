"""Sentinel URLs, the forms Celery and kombu take, and WAIT's confirmation on a real Redis."""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Callable

import kombu.exceptions
import pytest
import redis
from celery import Celery
from flask import Flask
from kombu import Connection
from redis.sentinel import Sentinel

from config import ConfigError, load_settings
from notifier.celery_ext import celery_config
from notifier.patches.celery_consumer import Consumer
from notifier.redisconn import (
    NotReplicated,
    RedisTarget,
    Replication,
    kombu_url,
    parse,
    primary_moves,
    refusal,
)
from notifier.runtime import Runtime, redis_client
from notifier.stores.batch_counts import open_key
from notifier.stores.notifications import metrics_key, payload_key, record_key
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer

SENTINELS = "redis+sentinel://:p%40ss@10.0.0.1:26379,[::1]:26380,s3:26381/notifier/2"


def test_a_sentinel_url_names_its_sentinels_primary_database_and_password() -> None:
    assert parse(SENTINELS) == RedisTarget(
        SENTINELS, (("10.0.0.1", 26379), ("::1", 26380), ("s3", 26381)), "notifier", 2, "p@ss"
    )
    assert parse("redis+sentinel://s1:26379/main").db == 0
    assert not parse("redis://localhost:6379/0").sentinel


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "names no primary"),
        ("redis+sentinel://s1/main", "is not host:port"),
        ("redis+sentinel://s1:99999/main", "is not host:port"),
        ("redis+sentinel://s1:26379/main/x", "is not a number"),
        ("redis+sentinel://:pw@s1:26379, s2:26379/main", "' s2:26379' has a space"),
    ],
)
def test_a_bad_sentinel_url_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, url: str, says: str
) -> None:
    monkeypatch.setenv("NOTIFIER_REDIS_URL", url)
    with pytest.raises(ConfigError) as e:
        load_settings(_env_file=None)
    assert str(e.value).startswith("NOTIFIER_REDIS_URL: ")
    assert says in str(e.value) and "\n" not in str(e.value)


def test_kombu_and_celery_get_their_own_form_of_a_sentinel_url() -> None:
    url, options = kombu_url(parse(SENTINELS))
    assert url == (
        "sentinel://:p%40ss@10.0.0.1:26379/2;sentinel://:p%40ss@[::1]:26380/2;"
        "sentinel://:p%40ss@s3:26381/2"
    )
    assert options["master_name"] == "notifier"
    settings = load_settings(_env_file=None, redis_url=SENTINELS)
    conf = celery_config(settings, SENTINELS)
    assert conf["broker_url"] == conf["result_backend"] == url
    assert conf["broker_transport_options"]["master_name"] == "notifier"
    assert conf["result_backend_transport_options"]["master_name"] == "notifier"
    assert conf["broker_channel_error_retry"] is True


def test_min_replicas_defaults_to_one_behind_sentinels_and_zero_otherwise() -> None:
    assert load_settings(_env_file=None, redis_url=SENTINELS).min_replicas == 1
    assert load_settings(_env_file=None, redis_url="redis://r:6379/0").min_replicas == 0
    chosen = load_settings(_env_file=None, redis_url=SENTINELS, redis_min_replicas=2)
    assert chosen.min_replicas == 2


def test_a_write_no_replica_holds_is_not_confirmed(redis_server: RedisServer) -> None:
    client = redis_client(redis_server.url(1))
    Replication(0, 10).confirm(client, 0)  # nothing asked: nothing waited for
    with pytest.raises(NotReplicated, match="0 of 1 Redis replicas acknowledged in 10 ms"):
        Replication(1, 10).confirm(client, 0)


def test_a_write_refused_on_a_primary_the_sentinels_no_longer_name_moves_the_pool(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A connection made while a sentinel named a replica that lost the promotion stays on it.

    Two real servers, each a primary without replicas; the sentinels' answer is ours to change.
    """
    other = RedisServer()
    other.start()
    try:
        named = [("127.0.0.1", redis_server.port)]
        monkeypatch.setattr(Sentinel, "discover_master", lambda self, name: named[0])
        client = redis_client("redis+sentinel://127.0.0.1:1/notifier/1")
        before = primary_moves(client)
        client.set("written", "here")
        named[0] = ("127.0.0.1", other.port)  # the sentinels name the other one now
        with pytest.raises(NotReplicated, match="primary changed"):
            Replication(1, 10).confirm(client, before)
        assert primary_moves(client) == before + 1
        # The next write goes to the primary the sentinels name.
        client.set("written", "there")
        assert redis.Redis(port=other.port, db=1).get("written") == b"there"
    finally:
        other.stop()


def _outcome_write(
    client: redis.Redis, failures: list[type[redis.RedisError]]
) -> Callable[[], str]:
    """A write of an outcome that first fails with each of ``failures`` in turn."""

    def write() -> str:
        if failures:
            raise failures.pop(0)("the primary is gone")
        client.set("outcome", "sent")
        return "made"

    return write


def test_a_write_that_could_not_be_made_is_made_again_while_a_failover_may_be_on(
    redis_server: RedisServer,
) -> None:
    """A worker's write that meets a silent primary (a timeout) or none (refused) is made again
    until its patience runs out, when replicas are asked for (Sentinel: a promotion is coming);
    with none asked for, there is no failover to wait for, and the error is the caller's."""
    replica = RedisServer(args=("--replicaof", "127.0.0.1", str(redis_server.port)))
    replica.start()
    try:
        client = redis_client(redis_server.url(1))
        wait_for(lambda: client.info("replication")["connected_slaves"] == 1, what="the replica")
        failures: list[type[redis.RedisError]] = [redis.TimeoutError, redis.ConnectionError]
        write = _outcome_write(client, failures)

        assert Replication(1, 1000).durably(client, write, patience=5) == "made"
        assert failures == []
        failures.append(redis.TimeoutError)
        with pytest.raises(redis.TimeoutError):
            Replication(0, 1000).durably(client, write, patience=5)
        failures[:] = [redis.ConnectionError] * 1000
        started = time.monotonic()
        with pytest.raises(redis.ConnectionError):
            Replication(1, 1000).durably(client, write, patience=0.5)
        assert time.monotonic() - started < 2.0
    finally:
        replica.stop()


def test_a_sends_outcome_is_made_again_after_a_lost_connection_without_replicas_too(
    redis_server: RedisServer,
) -> None:
    """``reconnect`` (the outcome of a send a provider took): a single Redis that went away (a
    restart) is waited for within the patience, where any other write's error is the caller's
    at once; past the patience, the error."""
    client = redis_client(redis_server.url(1))
    failures: list[type[redis.RedisError]] = [redis.ConnectionError, redis.TimeoutError]
    write = _outcome_write(client, failures)

    assert Replication(0, 1000).durably(client, write, patience=5, reconnect=True) == "made"
    assert failures == [] and client.get("outcome") == "sent"
    failures[:] = [redis.ConnectionError] * 1000
    started = time.monotonic()
    with pytest.raises(redis.ConnectionError):
        Replication(0, 1000).durably(client, write, patience=0.5, reconnect=True)
    assert 0.5 <= time.monotonic() - started < 2.0


def test_a_refusal_is_told_by_its_words_however_it_came() -> None:
    """Redis's own words, as redis-py raises them: by class, from a script, wrapped by kombu."""
    full = redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")
    in_script = redis.ResponseError(
        "Error running script (call to f_6b53): @user_script:171: @user_script: 171: "
        "-OOM command not allowed when used memory > 'maxmemory'."
    )
    try:
        raise kombu.exceptions.OperationalError(str(full)) from full
    except kombu.exceptions.OperationalError as e:
        wrapped = e
    for error in (full, in_script, wrapped):
        found = refusal(error)
        assert found is not None and found.code == "OOM"
        assert (
            str(found) == "Redis refuses writes (OOM): it is full, its used memory over maxmemory"
        )
    replica = refusal(redis.ReadOnlyError("You can't write against a read only replica."))
    assert replica is not None and replica.code == "READONLY"
    disk = refusal(redis.ResponseError("MISCONF Redis is configured to save RDB snapshots, but"
                                       " it's currently unable to persist to disk."))  # fmt: skip
    assert disk is not None and disk.code == "MISCONF"
    for other in (redis.ConnectionError("gone"), redis.ResponseError("ERR wrong number"), None):
        assert refusal(other) is None


def test_a_refused_write_is_made_again_until_redis_takes_it_or_patience_ends(
    redis_server: RedisServer,
) -> None:
    """A full, read-only or failing-disk Redis may pass (memory freed, the name moved to the new
    primary, the disk fixed): a worker's write waits it out, with replicas asked for or not; an
    error that is ours is raised at once."""
    client = redis_client(redis_server.url(1))
    refusals: list[redis.RedisError] = [
        redis.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        redis.ReadOnlyError("You can't write against a read only replica."),
        redis.ResponseError("MISCONF Errors writing to the AOF file"),
    ]
    failures = list(refusals)

    def write() -> str:
        if failures:
            raise failures.pop(0)
        return "made"

    assert Replication(0, 1000).durably(client, write, patience=5) == "made"
    assert failures == []
    failures[:] = refusals * 100
    started = time.monotonic()
    with pytest.raises(redis.ResponseError):
        Replication(0, 1000).durably(client, write, patience=0.5)
    assert time.monotonic() - started < 2.0
    failures[:] = [redis.ResponseError("ERR unknown command"), *refusals]
    with pytest.raises(redis.ResponseError, match="unknown command"):
        Replication(0, 1000).durably(client, write, patience=5)


def test_a_full_primary_still_confirms_a_write_with_its_replica() -> None:
    """The mark WAIT counts replicas by is a write: a full Redis must take it, or no outcome
    recorded while it is full (the one of a send a provider took) could be confirmed."""
    primary = RedisServer()
    primary.start()
    replica = RedisServer(args=("--replicaof", "127.0.0.1", str(primary.port)))
    replica.start()
    try:
        client = redis_client(primary.url(1))
        wait_for(lambda: client.info("replication")["connected_slaves"] == 1, what="the replica")
        primary.fill()
        with pytest.raises(redis.OutOfMemoryError):
            client.incr("anything")
        Replication(1, 2000).confirm(client, primary_moves(client))
    finally:
        replica.stop()
        primary.stop()


def test_a_claim_made_again_is_the_same_claim_and_its_outcome_counts_once(app: Flask) -> None:
    """What a worker's write does when redis-py makes it again after a lost answer."""
    rt: Runtime = app.extensions["notifier"]
    store = rt.store
    record = store.create(notification_id="n1", client="c", kind="mail", payload={"to": ["a"]})
    claim = store.claim(record.id, lease=30, max_attempts=5)
    token = store._held.claim[1]
    keys = [record_key("n1"), payload_key("n1"), metrics_key("n1")]
    again = store._claim(
        keys=keys,
        args=["2026-01-01T00:00:00Z", 0, 30, 5, token],
    )
    assert (again[0], int(again[1])) == ("sending", claim.attempt)
    other = store._claim(
        keys=keys,
        args=["2026-01-01T00:00:00Z", 0, 30, 5, "another"],
    )
    assert other[0] == "busy"
    store.settle(record.id, "sent", provider="smtp")
    metrics = redis.Redis.from_url(rt.redis_url, decode_responses=True)
    counted = metrics.hget(metrics_key("n1"), "final:mail:sent:live")
    # The same outcome, under the same claim, made again: nothing moves, nothing is counted twice.
    args = ["sent", "smtp", "", "2026-01-01T00:00:00Z", 60, "1", "0", "", "", " ", token]
    assert store._settle(keys=keys, args=args)[0] == 0
    assert metrics.hget(metrics_key("n1"), "final:mail:sent:live") == counted


def test_a_queued_notification_whose_message_was_lost_is_queued_again_once(app: Flask) -> None:
    from notifier.tasks.schedule import LOST_AFTER, requeue_lost

    rt: Runtime = app.extensions["notifier"]
    lane = rt.redis
    rt.store.create(notification_id="lost", client="c", kind="mail", payload={"to": ["a"]})
    later = time.time() + LOST_AFTER + 1
    assert requeue_lost(rt, now=time.time()) == 0  # not long enough ago
    rt.store.create(notification_id="ahead", client="c", kind="mail", payload={"to": ["b"]},
                    push=rt.mail_queue.direct("ahead"))  # fmt: skip
    assert requeue_lost(rt, now=later) == 0  # a backlog in its lane: it may be on its way
    lane.delete(rt.mail_queue.queue)
    assert requeue_lost(rt, now=later) == 0  # looked for again LOST_AFTER after the backlog
    # Neither's message is there now: one is queued again, and then its lane is not empty.
    again = later + LOST_AFTER + 1
    assert requeue_lost(rt, now=again) == 1
    assert lane.llen(rt.mail_queue.queue) == 1
    lane.delete(rt.mail_queue.queue)
    assert requeue_lost(rt, now=again) == 0  # the other waited behind it: looked for later
    after = again + LOST_AFTER + 1
    assert requeue_lost(rt, now=after) == 1  # one of the two again, as neither is there
    assert requeue_lost(rt, now=after) == 0  # and not again at once
    rt.store.claim("lost", lease=30, max_attempts=5)
    rt.store.settle("lost", "sent", provider="memory")
    assert "lost" not in rt.store.open_since(after + 2 * LOST_AFTER)


def test_a_lost_message_is_found_behind_more_than_a_sweeps_look_of_backlogged_ones(
    app: Flask,
) -> None:
    # The sweep looks at the 100 oldest open ids. A newsletter's rows waiting behind their
    # backlog were the 100 oldest at every sweep: a mail lost in its empty lane was never seen.
    from notifier.tasks.schedule import LOST_AFTER, requeue_lost

    rt: Runtime = app.extensions["notifier"]
    for n in range(150):
        rt.store.create(notification_id=f"row{n}", client="c", kind="mail", payload={"to": ["a"]})
        rt.redis.hset(record_key(f"row{n}"), "batch", "b1")  # a batch's row: the bulk lane
    rt.redis.rpush(rt.queue_of("mail", batch=True).queue, "a backlog")
    rt.store.create(notification_id="lost", client="c", kind="mail", payload={"to": ["b"]})
    # The lost one newer than every row (a second later: the index keeps whole seconds).
    rt.redis.zadd(open_key("lost"), {"lost": int(time.time()) + 1}, xx=True)
    later = time.time() + LOST_AFTER + 2
    found = [requeue_lost(rt, now=later) for _ in range(3)]
    assert found == [0, 1, 0]  # the rows' look is put off; then the lost one is seen
    assert rt.redis.llen(rt.mail_queue.queue) == 1
    assert "row0" not in rt.store.open_since(later - LOST_AFTER)  # looked for again later
    assert "row0" in rt.store.open_since(later + 1)


def test_a_send_whose_worker_died_and_whose_message_is_gone_is_queued_again(app: Flask) -> None:
    """kombu's BRPOP takes a message off its list before the worker writes it down as taken:
    a worker killed in between, mid-send, leaves a record ``sending`` and no message."""
    from notifier.tasks.schedule import LOST_AFTER, requeue_lost

    rt: Runtime = app.extensions["notifier"]
    rt.store.create(notification_id="orphan", client="c", kind="mail", payload={"to": ["a"]})
    assert rt.store.claim("orphan", lease=60, max_attempts=5).status == "sending"
    start = time.time()
    # Its attempt may still run: its lease (60 s), then LOST_AFTER, before it is looked for.
    assert requeue_lost(rt, now=start + LOST_AFTER + 1) == 0
    assert requeue_lost(rt, now=start + 60 + 1) == 0
    assert requeue_lost(rt, now=start + 60 + LOST_AFTER + 2) == 1
    assert rt.redis.llen(rt.mail_queue.queue) == 1  # its task, queued again
    assert requeue_lost(rt, now=start + 60 + 2 * LOST_AFTER + 3) == 0  # and only once


def test_a_worker_that_lost_its_broker_tries_again_within_a_second(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """kombu's own pauses (2 s, then 4 s…) would cost a worker seconds after a promotion."""
    server = RedisServer()  # its port, with nothing on it yet
    consumer = Consumer.__new__(Consumer)  # the one method, without a whole worker
    consumer.app = Celery(set_as_current=False)
    consumer.app.conf.broker_connection_max_retries = None
    consumer.first_connection_attempt = False
    consumer.broker_connection_retry_attempt = 0
    later = threading.Timer(1.5, server.start)
    later.start()
    try:
        with Connection(server.url(), transport_options={"socket_connect_timeout": 0.2}) as conn:
            caplog.set_level(logging.ERROR, logger="celery.worker.consumer.consumer")
            assert consumer.ensure_connected(conn).connected
        # Celery words a pause under a second "now"; kombu's first would be "in 2.00 seconds".
        pauses = re.findall(r"Trying again (now|in [\d.]+ seconds)", caplog.text)
        assert len(pauses) >= 2 and set(pauses) <= {"now", "in 1.10 seconds"}, pauses
    finally:
        later.join()
        server.stop()


def test_with_a_broker_of_its_own_the_sweep_reads_the_brokers_lanes(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With RabbitMQ (or a Redis broker apart) nothing swept: a retry whose publish a memory
    # alarm refused was rejected by Celery, and its record stayed retrying for ever. The lanes'
    # lengths come from the broker, kombu's passive declare (here a Redis broker's, through
    # kombu: an empty list is NOT_FOUND, read as 0); unknown, nothing is queued on a guess.
    from notifier.metrics import broker_depths
    from notifier.tasks import schedule
    from notifier.tasks.schedule import LOST_AFTER, requeue_lost

    rt: Runtime = app.extensions["notifier"]
    rt.broker_is_state = False
    lane = rt.mail_queue.queue
    assert broker_depths(rt.celery, [lane, "sms"]) == {lane: 0, "sms": 0}
    rt.store.create(notification_id="lost", client="c", kind="mail", payload={"to": ["a"]})
    later = time.time() + LOST_AFTER + 1
    with monkeypatch.context() as unreachable:
        unreachable.setattr(schedule, "broker_depths", lambda celery, lanes: {})
        assert requeue_lost(rt, now=later) == 0  # the broker could not be asked
    rt.redis.lpush(lane, "a message ahead of it")
    assert broker_depths(rt.celery, [lane]) == {lane: 1}
    assert requeue_lost(rt, now=later + LOST_AFTER + 1) == 0  # its lane has a backlog
    rt.redis.delete(lane)
    assert requeue_lost(rt, now=later + 2 * LOST_AFTER + 2) == 1
    assert rt.redis.llen(lane) == 1  # published through the broker

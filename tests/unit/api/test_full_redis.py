"""What the API says of a Redis that answers and will not write, full (maxmemory, noeviction) or
a read-only replica, and how near to full it is. Each is a real server of the test's own."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from config import Settings
from notifier import create_app
from notifier.stores.batches.keys import new_batch_id
from tests.support.harness.api import MAIL, assert_problem, post
from tests.support.peers.redis_server import RedisServer

FULL = "Redis refuses writes (OOM): it is full, its used memory over maxmemory"
REPLICA = "Redis refuses writes (READONLY): it is a read-only replica, not the primary"


def client_of(make_settings: Callable[..., Settings], url: str, **more: object) -> FlaskClient:
    return create_app(make_settings(redis_url=url, **more)).test_client()


def test_a_full_redis_is_not_ready_and_its_503s_say_so(
    make_settings: Callable[..., Settings], fillable: RedisServer
) -> None:
    client = client_of(make_settings, fillable.url())
    assert client.get("/readyz").status_code == 200
    fillable.fill()
    assert assert_problem(client.get("/readyz"), 503)["detail"] == FULL
    refused = post(client, MAIL)
    assert assert_problem(refused, 503)["detail"] == f"{FULL}; nothing was accepted, retry later"
    assert refused.headers["Retry-After"] == "5"
    strict = client_of(make_settings, fillable.url(), rate_limit_fail_open=False)
    detail = assert_problem(post(strict, MAIL), 503)["detail"]
    assert detail == f"the rate limit cannot be checked ({FULL}); retry later"
    fillable.free()
    assert client.get("/readyz").status_code == 200
    assert post(client, MAIL).status_code == 202


def test_a_replica_is_not_ready_and_its_503s_say_so(
    make_settings: Callable[..., Settings], redis_server: RedisServer
) -> None:
    replica = RedisServer(args=("--replicaof", "127.0.0.1", str(redis_server.port)))
    replica.start()
    try:
        client = client_of(make_settings, replica.url(1))
        assert assert_problem(client.get("/readyz"), 503)["detail"] == REPLICA
        refused = assert_problem(post(client, MAIL), 503)["detail"]
        assert refused == f"{REPLICA}; nothing was accepted, retry later"
    finally:
        replica.stop()


def memory(client: FlaskClient) -> dict[str, float]:
    """The Redis memory series /metrics serves, by name."""
    text = client.get("/metrics").get_data(as_text=True)
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name.startswith("notifier_redis_memory_")
    }


def test_metrics_serve_how_near_redis_is_to_full(
    make_settings: Callable[..., Settings], fillable: RedisServer
) -> None:
    client = client_of(make_settings, fillable.url())
    state = redis.Redis.from_url(fillable.url())
    used = int(state.info("memory")["used_memory"])
    state.config_set("maxmemory", used * 4)
    try:
        served = memory(client)
        assert served["notifier_redis_memory_max_bytes"] == used * 4
        assert 0.5 < served["notifier_redis_memory_headroom_ratio"] < 1  # about three quarters
        fillable.fill()
        assert memory(client)["notifier_redis_memory_headroom_ratio"] <= 0
    finally:
        fillable.free()
    # No maxmemory: the machine's memory is what runs out.
    served = memory(client)
    assert served["notifier_redis_memory_max_bytes"] == 0
    assert 0 < served["notifier_redis_memory_headroom_ratio"] < 1
    assert served["notifier_redis_memory_used_bytes"] > 0


def test_a_record_whose_message_could_not_be_queued_is_taken_back_on_a_full_redis(
    make_settings: Callable[..., Settings], fillable: RedisServer
) -> None:
    """With another broker the record is stored, then the message published; a Redis that
    fills in between refuses the publish, and the 503 must leave nothing for a sweep to send
    (Redis up to 7.2 refuses a whole MULTI while full, deletes and all)."""
    rt = create_app(make_settings(redis_url=fillable.url())).extensions["notifier"]
    rt.store.create(notification_id="n1", client="tester", kind="mail", payload={"to": ["a@x"]})
    fillable.fill()
    try:
        rt.store.discard("n1")
    finally:
        fillable.free()
    assert rt.store.get("n1") is None and rt.store.payload("n1") is None
    state = redis.Redis.from_url(fillable.url())
    assert not any(state.zscore(key, "n1") for key in state.keys("*open*") + state.keys("*sched*"))


def test_a_batch_whose_fan_out_could_not_be_queued_is_taken_back_on_a_full_redis(
    make_settings: Callable[..., Settings], fillable: RedisServer
) -> None:
    rt = create_app(make_settings(redis_url=fillable.url())).extensions["notifier"]
    batch = new_batch_id()
    rows: list[tuple[str, dict[str, Any], str | None, dict[str, str]]] = [
        ("a@example.com", {}, None, {})
    ]
    rt.batches.create(batch_id=batch, client="tester", content={"subject": "S", "text": "x"},
                      rows=rows, send_at=None, reference=None, test=False, callback=False)  # fmt: skip
    fillable.fill()
    try:
        rt.batches.discard(batch)
    finally:
        fillable.free()
    assert rt.batches.get(batch) is None

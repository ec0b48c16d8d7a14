"""What the API says of a Redis that answers and will not write: full (maxmemory, noeviction),
or a read-only replica. Each is a real server of the test's own."""

from __future__ import annotations

from collections.abc import Callable

from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
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

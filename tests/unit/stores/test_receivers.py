"""Each receiver's run of failures and its hold (the callbacks' breaker), on a real Redis."""

from __future__ import annotations

import pytest
import redis

from notifier.stores.receivers import THRESHOLD, Receivers
from tests.support.harness.keyslots import SlotWatch
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer

URL = "https://hooks.example.com/notifier"


@pytest.fixture
def r(redis_server: RedisServer) -> redis.Redis:
    client = redis.Redis.from_url(redis_server.url(1), decode_responses=True)
    client.flushdb()
    return client


def receivers(r: redis.Redis, base: float = 10, cap: float = 40) -> Receivers:
    return Receivers(r, base=base, cap=cap, probe_lease=6)


def test_a_few_failures_hold_nothing(r: redis.Redis) -> None:
    store = receivers(r)
    for _ in range(THRESHOLD - 1):
        store.failed(URL)
    assert store.standing(URL).wait == 0
    assert store.standing(URL).failures == THRESHOLD - 1


def test_failures_in_a_row_hold_the_receiver_doubling_up_to_the_cap(r: redis.Redis) -> None:
    store = receivers(r, base=10, cap=40)
    holds = []
    for _ in range(THRESHOLD + 3):
        if store.failed(URL) >= THRESHOLD:
            holds.append(store.standing(URL).wait)
    # 10, 20, 40, then the cap: the wait is what is left of each, a moment less.
    assert [round(h) for h in holds] == [10, 20, 40, 40]
    assert store.standing("https://other.example.com/").wait == 0  # others are not held


def test_a_2xx_ends_the_run_and_the_hold(r: redis.Redis) -> None:
    store = receivers(r)
    for _ in range(THRESHOLD):
        store.failed(URL)
    store.recovered(URL)
    assert store.standing(URL) == store.standing("https://never.example.com/")
    assert store.standing(URL).failures == 0


def test_past_a_hold_one_probe_goes_and_the_others_wait_for_it(r: redis.Redis) -> None:
    store = receivers(r, base=0.05, cap=0.05)
    for _ in range(THRESHOLD):
        store.failed(URL)
    assert store.standing(URL).wait > 0
    wait_for(lambda: store.standing(URL).wait == 0, timeout=5, what="the hold to run out")
    # That standing was the probe's; until it answers, everyone else waits (at least its lease).
    assert 5 < store.standing(URL).wait <= 6
    store.failed(URL)  # the probe failed: held again, and the next probe may go after it
    assert 0 < store.standing(URL).wait <= 0.05


def test_every_step_stays_in_one_slot(r: redis.Redis, redis_server: RedisServer) -> None:
    store = receivers(r, base=0.01, cap=0.01)
    with SlotWatch(redis_server.url(1)) as seen:
        for _ in range(THRESHOLD):
            store.failed(URL)
        wait_for(lambda: store.standing(URL).wait == 0, timeout=5, what="the probe")
        store.standing(URL)
        store.recovered(URL)
    assert seen.violations == []
    assert len(seen.operations) > THRESHOLD

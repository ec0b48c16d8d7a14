"""The slot watcher itself, against a real Redis: what Cluster refuses is found, nothing else."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from tests.support.harness.keyslots import Command, SlotWatch, UnknownCommand, command_keys
from tests.support.peers.redis_server import RedisServer

SET_BOTH = "redis.call('SET', KEYS[1], 1); redis.call('SET', KEYS[2], 1); return 1"


@pytest.fixture
def url(redis_server: RedisServer) -> str:
    """Database 3 of the session's Redis, emptied, its script cache too (so first calls miss)."""
    found = redis_server.url(3)
    client = redis.Redis.from_url(found)
    client.flushdb()
    client.script_flush()
    return found


@pytest.fixture
def r(url: str) -> Iterator[redis.Redis]:
    """A client of that database."""
    client = redis.Redis.from_url(url, decode_responses=True)
    yield client
    client.close()


def kinds(watch: SlotWatch) -> list[str]:
    return [v.kind for v in watch.violations]


def test_a_script_whose_keys_share_a_hash_tag_passes(url: str, r: redis.Redis) -> None:
    both = r.register_script(SET_BOTH)
    with SlotWatch(url) as watch:
        both(keys=["{a}x", "{a}y"])
    assert watch.violations == []
    (script,) = [o for o in watch.operations if o.kind == "script" and o.body]
    assert [c.args[:2] for c in script.body] == [("SET", "{a}x"), ("SET", "{a}y")]


def test_a_script_whose_keys_are_in_two_slots_is_cross_slot(url: str, r: redis.Redis) -> None:
    both = r.register_script(SET_BOTH)
    with SlotWatch(url, names={both.sha: "set-both"}) as watch:
        both(keys=["a", "b"])
    # Its first call missed the script cache (EVALSHA, SCRIPT LOAD, EVALSHA): each EVALSHA
    # declared the same keys, and Cluster would refuse either.
    assert set(kinds(watch)) == {"cross-slot script"}
    violation = watch.violations[-1]
    assert (violation.command, violation.keys) == ("set-both", ("a", "b"))
    assert len(violation.slots) == 2


def test_a_script_that_reads_a_key_it_did_not_declare_is_flagged(url: str, r: redis.Redis) -> None:
    sneaky = r.register_script("redis.call('SET', KEYS[1], 1); return redis.call('GET', 'other')")
    with SlotWatch(url) as watch:
        sneaky(keys=["mine"])
    (violation,) = watch.violations
    assert violation.kind == "undeclared key in script"
    assert violation.keys == ("other",)
    assert violation.command.endswith(" GET")


def test_an_undeclared_key_in_the_declared_keys_slot_passes(url: str, r: redis.Redis) -> None:
    """The node that owns the slot holds it: Cluster runs it (as a row's step finds its batch)."""
    near = r.register_script("redis.call('SET', KEYS[1], 1); return redis.call('GET', '{t}other')")
    with SlotWatch(url) as watch:
        near(keys=["{t}mine"])
    assert watch.violations == []


def test_a_transaction_within_one_slot_passes_and_across_two_is_flagged(
    url: str, r: redis.Redis
) -> None:
    with SlotWatch(url) as good, r.pipeline(transaction=True) as pipe:
        pipe.set("{x}a", 1)
        pipe.set("{x}b", 1)
        pipe.execute()
    assert good.violations == []
    with SlotWatch(url) as bad, r.pipeline(transaction=True) as pipe:
        pipe.set("a", 1)
        pipe.set("b", 1)
        pipe.execute()
    (violation,) = bad.violations
    assert (violation.kind, violation.command, violation.keys) == (
        "cross-slot transaction", "MULTI[SET SET]", ("a", "b"),
    )  # fmt: skip


def test_a_script_in_a_transaction_counts_with_its_other_commands(url: str, r: redis.Redis) -> None:
    both = r.register_script(SET_BOTH)
    both(keys=["{t}1", "{t}2"])  # loaded before: the pipeline's EVALSHA finds it
    with SlotWatch(url) as watch, r.pipeline(transaction=True) as pipe:
        both(keys=["{t}1", "{t}2"], client=pipe)
        pipe.set("elsewhere", 1)
        pipe.execute()
    (violation,) = watch.violations
    assert violation.kind == "cross-slot transaction"
    assert violation.keys == ("{t}1", "{t}2", "elsewhere")


def test_watched_keys_belong_to_the_transaction_that_follows(url: str, r: redis.Redis) -> None:
    with SlotWatch(url) as watch, r.pipeline(transaction=True) as pipe:
        pipe.watch("watched")  # type: ignore[no-untyped-call]
        pipe.multi()
        pipe.set("written", 1)
        pipe.execute()
    (violation,) = watch.violations
    assert (violation.kind, violation.keys) == ("cross-slot transaction", ("watched", "written"))


def test_a_multi_key_command_across_slots_is_flagged_outside_a_transaction_too(
    url: str, r: redis.Redis
) -> None:
    with SlotWatch(url) as watch:
        r.delete("{k}1", "{k}2")
        r.delete("a", "b")
    (violation,) = watch.violations
    assert (violation.kind, violation.command, violation.keys) == (
        "cross-slot command", "DEL", ("a", "b"),
    )  # fmt: skip


def test_an_ignored_key_is_left_out_of_every_check(url: str, r: redis.Redis) -> None:
    push = r.register_script(
        "redis.call('SET', KEYS[1], 1); redis.call('LPUSH', KEYS[2], 'm');"
        " redis.call('LPUSH', 'queue2', 'm'); return 1"
    )
    with SlotWatch(url, ignore=lambda key: key.startswith("queue")) as watch:
        push(keys=["{a}x", "queue1"])
        with r.pipeline(transaction=True) as pipe:
            pipe.set("{a}x", 1)
            pipe.lpush("queue1", "m")
            pipe.execute()
        r.delete("{a}x", "queue1")
    assert watch.violations == []


def test_every_command_of_the_block_is_seen_and_none_from_before(url: str, r: redis.Redis) -> None:
    r.set("before", 1)
    with SlotWatch(url) as watch:
        for i in range(200):
            r.set(f"k{i}", i)
    keys = [c.args[1] for c in watch.commands if c.name == "SET"]
    assert keys == [f"k{i}" for i in range(200)]


def test_a_command_of_unknown_keys_fails_the_watch_loudly(url: str, r: redis.Redis) -> None:
    with pytest.raises(UnknownCommand, match="OBJECT"), SlotWatch(url):
        r.set("k", 1)
        r.object("encoding", "k")


def test_keys_are_read_by_position_so_values_may_hold_spaces() -> None:
    assert command_keys(("SET", "k", "a", "value", "with", "spaces")) == ("k",)
    assert command_keys(("EVALSHA", "f" * 40, "2", "k1", "", "an arg")) == ("k1", "")
    assert command_keys(("BRPOP", "q1", "q2", "1")) == ("q1", "q2")
    assert Command("lua", ("MSET", "a", "1", "b", "2")).keys == ("a", "b")

"""Moving the keys a release before the hash tags wrote to where they live now, once.

Until the keys carried their shard's hash tag (:mod:`notifier.stores.slots`) a record was
``notifier:n:<id>``, the schedule one ``notifier:scheduled``, the counters one
``notifier:metrics``. After an upgrade every process, as it starts (before it serves or takes a
task), makes sure every such key is in its shard: the first moves them and marks the layout
done in ``notifier:layout``, the others wait for that (seconds for a few hundred thousand keys;
see docs/production.md, "Redis Cluster"). A process that could not reach Redis as it started leaves it to the first
``dispatch_due``; ``notifier migrate`` does the same by hand.

Each step is safe to repeat and to run beside another process doing the same: keys are renamed
(an error for a key another process moved first is ignored), sorted sets and counters are moved
by one script each, which empties the old key in the same step.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from redis import Redis, RedisError

from notifier.stores.batch_counts import OPEN, SCHEDULED
from notifier.stores.batches import batch_key
from notifier.stores.captchas import Sender
from notifier.stores.notifications import METRICS, payload_key, record_key
from notifier.stores.scripts import source
from notifier.stores.slots import SHARDS, in_shard, shard_key

log = logging.getLogger(__name__)
LAYOUT = "notifier:layout"
VERSION = "2"  # keys carry their shard's hash tag
_LOCK = "notifier:layout:lock"


def _captcha_phone(phone: str) -> str:
    return Sender("", "", phone).recipient_key


def _captcha_resend(scope: str) -> str:
    client, purpose, phone = scope.split(":", 2)  # neither a client nor a purpose holds ":"
    return Sender(client, purpose, phone).resend_key


# Old prefix, and the new key of what follows it. What a record or a batch points to moves
# before it, so whoever finds a record (or a batch) in its new place finds its payload too.
_RENAMES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("notifier:p:", payload_key),
    ("notifier:n:", record_key),
    ("notifier:bc:", lambda batch_id: in_shard(batch_id, f"bc:{batch_id}")),
    ("notifier:br:", lambda batch_id: in_shard(batch_id, f"br:{batch_id}")),
    ("notifier:b:", batch_key),
    ("notifier:captcha:phone:", _captcha_phone),
    ("notifier:captcha:resend:", _captcha_resend),
)


def current(redis: Redis) -> bool:
    """Whether the keys are where this release looks for them."""
    return redis.get(LAYOUT) in (VERSION, VERSION.encode())


def ensure(redis: Redis, *, patience: float = 300.0) -> bool:
    """At a process's start: the keys moved (by this process, or by another that is at it,
    waited for up to ``patience`` seconds); False when Redis could not be asked (the first
    ``dispatch_due`` tries again)."""
    deadline = time.monotonic() + patience
    try:
        while migrate(redis) is None and time.monotonic() < deadline:
            time.sleep(0.2)  # another process is moving them: poll for its mark
        return current(redis)
    except RedisError as e:
        log.warning("could not check the key layout at start (dispatch_due will): %s", e)
        return False


def migrate(redis: Redis, *, batch: int = 1000) -> int | None:
    """Move the old keys into their shards; how many were moved, or None when another process
    is at it (its lock holds for five minutes, then anyone may start again)."""
    if current(redis):
        return 0
    if not redis.set(_LOCK, "1", nx=True, ex=300):
        return None
    started = time.monotonic()
    moved = 0
    try:
        for prefix, new in _RENAMES:
            moved += _rename_all(redis, prefix, new, batch)
        # Each only where an old key is (these two span slots: never on a fresh Redis).
        for name in (SCHEDULED, OPEN):
            if redis.exists(f"notifier:{name}"):
                move_set = redis.register_script(source("layout/move_set"))
                moved += int(move_set(keys=[f"notifier:{name}"], args=[name]))
        if redis.exists("notifier:metrics"):
            merge = redis.register_script(source("layout/merge_counters"))
            merge(keys=["notifier:metrics", shard_key(SHARDS[0], METRICS)])
        redis.delete("notifier:dispatched_at")  # each shard's is stamped at its next look
        redis.set(LAYOUT, VERSION)
    finally:
        redis.delete(_LOCK)  # done, or failed half-way: the next run starts again
    if moved:
        log.warning(
            "moved %d keys of the layout before hash tags into their shards in %.1f s",
            moved, time.monotonic() - started,
        )  # fmt: skip
    return moved


def _rename_all(redis: Redis, prefix: str, new: Callable[[str], str], batch: int) -> int:
    moved = 0
    keys: list[str] = []
    for raw in redis.scan_iter(match=f"{prefix}*", count=batch):
        key = raw.decode() if isinstance(raw, bytes) else str(raw)
        if "{" in key:
            continue  # already in the new layout
        keys.append(key)
        if len(keys) >= batch:
            moved += _rename(redis, keys, prefix, new)
            keys = []
    return moved + _rename(redis, keys, prefix, new)


def _rename(redis: Redis, keys: list[str], prefix: str, new: Callable[[str], str]) -> int:
    if not keys:
        return 0
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.rename(key, new(key.removeprefix(prefix)))
        answers = pipe.execute(raise_on_error=False)
    # An error is a key another process moved (or that expired) in between.
    return sum(1 for answer in answers if answer is True)

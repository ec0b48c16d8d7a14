"""Moving the keys an earlier release wrote to where they live now, once.

Version 2: until the keys carried their shard's hash tag (:mod:`notifier.stores.slots`) a record
was ``notifier:n:<id>``, the schedule one ``notifier:scheduled``, the counters one
``notifier:metrics``. Version 3: until captcha keys named their recipient by a pseudonym
(:mod:`notifier.stores.captchas`), a code was
``notifier:captcha:code:<client>:<purpose>:<recipient>``, a window
``notifier:captcha:phone:{+447700900123}:<client>`` (``notifier:captcha:phone:<phone>`` and
``notifier:captcha:resend:<client>:<purpose>:<phone>`` before version 2), an end user's
address's ``notifier:captcha:ip:{198.51.100.7}``: each moves to its name by pseudonym (from
version 1 or 2 alike), a window merged into what that name holds already, so a recipient's
sends before the upgrade still count against its limits, and a code sent before it still
verifies. Also version 3: until the console listed batches (``notifier:{s}:batches``, written
as a batch is stored), no list held them: every batch stored before is listed in its shard by
the time it was made, each list kept to its newest as a batch stored now keeps it.

After an upgrade every process, as it starts (before it serves or takes a task), makes sure
every such key is where it is looked for: the first moves them and marks the layout done in
``notifier:layout``, the others wait for that (seconds for a few hundred thousand keys; see
docs/production.md, "Redis Cluster"). A process that could not reach Redis as it started
leaves it to the first ``dispatch_due``; ``notifier migrate`` does the same by hand.

Each step is safe to repeat and to run beside another process doing the same: keys are renamed
(an error for a key another process moved first is ignored), sorted sets and counters are moved
by one script each, which empties the old key in the same step, and so is each captcha key; a
batch is listed only when its list does not hold it yet (never moved by a second run), and each
list is cut to its newest after every round, as a batch stored meanwhile cuts it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime

from redis import Redis, RedisError
from redis.commands.core import Script

from notifier.stores.batch_counts import OPEN, SCHEDULED
from notifier.stores.batches import batch_key
from notifier.stores.batches.keys import LISTED, listed_key
from notifier.stores.captchas import code_key, named, pseudonym, resend_key, window_key
from notifier.stores.notifications import METRICS, payload_key, record_key
from notifier.stores.scripts import source
from notifier.stores.slots import SHARDS, any_shard, in_shard, shard_key

log = logging.getLogger(__name__)
LAYOUT = "notifier:layout"
VERSION = "3"  # captcha keys name their recipient by a pseudonym; batches are listed
HASH_TAGS = "2"  # keys carry their shard's hash tag
_LOCK = "notifier:layout:lock"
_CAPTCHA = "notifier:captcha:"
_WINDOWS = ("phone", "mail", "ip")


# Old prefix, and the new key of what follows it. What a record or a batch points to moves
# before it, so whoever finds a record (or a batch) in its new place finds its payload too.
_RENAMES: tuple[tuple[str, Callable[[str], str]], ...] = (
    ("notifier:p:", payload_key),
    ("notifier:n:", record_key),
    ("notifier:bc:", lambda batch_id: in_shard(batch_id, f"bc:{batch_id}")),
    ("notifier:br:", lambda batch_id: in_shard(batch_id, f"br:{batch_id}")),
    ("notifier:b:", batch_key),
)


def current(redis: Redis) -> bool:
    """Whether the keys are where this release looks for them."""
    return redis.get(LAYOUT) in (VERSION, VERSION.encode())


def ensure(redis: Redis, secret: bytes, *, patience: float = 300.0) -> bool:
    """At a process's start: the keys moved (by this process, or by another that is at it,
    waited for up to ``patience`` seconds; ``secret`` keys the pseudonyms); False when Redis
    could not be asked (the first ``dispatch_due`` tries again)."""
    deadline = time.monotonic() + patience
    try:
        while migrate(redis, secret) is None and time.monotonic() < deadline:
            time.sleep(0.2)  # another process is moving them: poll for its mark
        return current(redis)
    except RedisError as e:
        log.warning("could not check the key layout at start (dispatch_due will): %s", e)
        return False


def migrate(redis: Redis, secret: bytes, *, batch: int = 1000) -> int | None:
    """Move the old keys into their shards, and to their pseudonyms (keyed by ``secret``), and
    list the batches no list holds; how many keys were moved or listed, or None when another
    process is at it (its lock holds for five minutes, then anyone may start again)."""
    if current(redis):
        return 0
    if not redis.set(_LOCK, "1", nx=True, ex=300):
        return None
    started = time.monotonic()
    moved = 0
    try:
        if redis.get(LAYOUT) not in (HASH_TAGS, HASH_TAGS.encode()):
            moved += _hash_tags(redis, batch)
        moved += _name_captchas(redis, secret, batch)
        moved += _list_batches(redis, batch)
        redis.set(LAYOUT, VERSION)
    finally:
        redis.delete(_LOCK)  # done, or failed half-way: the next run starts again
    if moved:
        log.warning(
            "moved (or listed) %d keys of an earlier layout to their names now in %.1f s",
            moved, time.monotonic() - started,
        )  # fmt: skip
    return moved


def _hash_tags(redis: Redis, batch: int) -> int:
    """Version 2: every key into its shard."""
    moved = 0
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
    return moved


def _name_captchas(redis: Redis, secret: bytes, batch: int) -> int:
    """Version 3: every captcha key that names a recipient (or an address) in the clear, to its
    name by pseudonym (of version 1's names too)."""
    move = redis.register_script(source("layout/name_captcha"))
    moves: list[tuple[str, str]] = []
    moved = 0
    for raw in redis.scan_iter(match=f"{_CAPTCHA}*", count=batch):
        old = raw.decode() if isinstance(raw, bytes) else str(raw)
        new = None if named(old) else _named(secret, old.removeprefix(_CAPTCHA))
        if new is not None:
            moves.append((old, new))
        if len(moves) >= batch:
            moved += _run_moves(redis, move, moves)
            moves = []
    return moved + _run_moves(redis, move, moves)


def _list_batches(redis: Redis, batch: int) -> int:
    """Version 3: every batch into its shard's list of newest, by the time it was made; how
    many more the lists hold."""
    keys: list[str] = []
    listed = 0
    for raw in redis.scan_iter(match=any_shard("b:*"), count=batch):
        keys.append(raw.decode() if isinstance(raw, bytes) else str(raw))
        if len(keys) >= batch:
            listed += _list(redis, keys)
            keys = []
    return listed + _list(redis, keys)


def _list(redis: Redis, keys: list[str]) -> int:
    """List the batches of ``keys`` (their hashes) that their lists do not hold yet; then cut
    each list touched to its newest, so none grows past it however many batches there are."""
    with redis.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.hget(key, "created_at")
        made = pipe.execute()
    found = {
        key.partition("}:b:")[2]: _time(at)
        for key, at in zip(keys, made, strict=True)
        if at  # None: expired since the SCAN
    }
    lists = {listed_key(batch_id) for batch_id in found}
    with redis.pipeline(transaction=False) as pipe:
        for batch_id, at in found.items():
            pipe.zadd(listed_key(batch_id), {batch_id: at}, nx=True)
        for key in lists:
            pipe.zremrangebyrank(key, 0, -LISTED - 1)
        answers = pipe.execute()
    added, cut = answers[: len(found)], answers[len(found) :]
    return sum(map(int, added)) - sum(map(int, cut))  # what the lists hold more than before


def _time(at: str | bytes) -> float:
    """The Unix time of a batch's ``created_at`` (RFC 3339, as the list scores it)."""
    return datetime.fromisoformat(at.decode() if isinstance(at, bytes) else at).timestamp()


def _named(secret: bytes, name: str) -> str | None:
    """The name now of a captcha key named ``notifier:captcha:<name>`` before the pseudonyms
    (None for a key that is no captcha key of an earlier release)."""
    kind, _, rest = name.partition(":")
    if kind == "code" and rest.count(":") >= 2:
        return code_key(secret, rest)
    if kind == "resend" and rest.count(":") >= 2:
        client, purpose, counted = rest.split(":", 2)  # no client or purpose holds ":"
        return resend_key(client, purpose, pseudonym(secret, _untagged(counted)))
    if kind not in _WINDOWS or not rest:
        return None
    client = ""
    if rest.startswith("{"):  # version 2: {<counted>}, or {<counted>}:<client>
        rest, _, client = rest[1:].rpartition("}")
        client = client.removeprefix(":")
    what = "ip" if kind == "ip" else "captcha"
    return window_key(kind, pseudonym(secret, rest, what=what), client)


def _untagged(counted: str) -> str:
    """A recipient without the braces of its hash tag (version 2), or as it was (version 1)."""
    return counted[1:-1] if counted.startswith("{") and counted.endswith("}") else counted


def _run_moves(redis: Redis, move: Script, moves: list[tuple[str, str]]) -> int:
    with redis.pipeline(transaction=False) as pipe:
        for old, new in moves:
            move(keys=[old, new], client=pipe)
        return sum(int(answer) for answer in pipe.execute())


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

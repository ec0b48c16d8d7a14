"""Where a key lives: the shard of a notification or a batch, as a Redis Cluster hash tag.

Redis Cluster runs a script or a transaction only when all its keys hash to one slot, and it
hashes only the part of a key inside its first ``{…}`` (the hash tag). So every key one step
touches carries the same tag:

* a notification's and a batch's keys, and the indexes and counters their steps move, carry the
  shard of their id: ``notifier:{a}:n:<id>``, ``notifier:{a}:open``, ``notifier:{a}:metrics``.
  The shard is the id's first character (ids are random UUIDs, so it is one of 16 hex digits
  evenly), and a batch's rows get ids in their batch's shard, so a row's step moves its batch's
  counts in the same slot. What spans every shard (the schedule's due ids, /metrics, lost
  messages) is read shard by shard;
* a captcha's send limits carry their recipient's pseudonym (``notifier:captcha:phone:{<h>}``,
  a keyed hash: :mod:`notifier.stores.captchas`);
* every other key is the only key of its step (an idempotency slot, a rate bucket).

On one Redis server (or Sentinel) the tags change nothing; they are what lets the state move to
a Cluster of up to 16 primaries later (see docs/production.md, "Redis Cluster"). The scripts'
copy of these rules is ``lua/lib/shard.lua`` (a test holds the two to one rule).
"""

from __future__ import annotations

SHARDS = "0123456789abcdef"


def shard(identifier: str) -> str:
    """The shard of an id: its first character when that is a hex digit (a UUID's is), else 0."""
    first = identifier[:1]
    return first if first and first in SHARDS else "0"


def shard_key(which: str, name: str) -> str:
    """Key ``name`` of shard ``which``."""
    return f"notifier:{{{which}}}:{name}"


def in_shard(identifier: str, name: str) -> str:
    """Key ``name`` in the shard of ``identifier``."""
    return shard_key(shard(identifier), name)


def every_shard(name: str) -> list[str]:
    """Key ``name`` of each shard, in shard order."""
    return [shard_key(which, name) for which in SHARDS]


def any_shard(name: str) -> str:
    """A SCAN pattern of key ``name`` (itself a pattern) in any shard."""
    return f"notifier:{{?}}:{name}"

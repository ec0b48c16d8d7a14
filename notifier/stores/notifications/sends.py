"""The sends of each minute of the last hour, as ``settle.lua`` counts them (see :mod:`.keys`):
by lane and by client and kind, sent or failed for good."""

from __future__ import annotations

from typing import cast

from redis import Redis

from notifier.stores.notifications.keys import MINUTE, sends_keys
from notifier.stores.slots import SHARDS


def by_minute(redis: Redis, now: float, minutes: int = 60) -> list[dict[str, int]]:
    """The counts of each of the last ``minutes`` minutes (the one under way last), every
    shard's added up, in one round trip."""
    last = int(now // MINUTE)
    wanted = range(last - minutes + 1, last + 1)
    with redis.pipeline(transaction=False) as pipe:
        for minute in wanted:
            for key in sends_keys(minute):
                pipe.hgetall(key)
        answers = cast(list[dict[str, str]], pipe.execute())
    found: list[dict[str, int]] = []
    for index in range(len(wanted)):
        merged: dict[str, int] = {}
        for shard in answers[index * len(SHARDS) : (index + 1) * len(SHARDS)]:
            for field, value in shard.items():
                merged[field] = merged.get(field, 0) + int(value)
        found.append(merged)
    return found

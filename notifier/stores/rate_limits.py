"""Per-client rate limits: a token bucket in Redis, taken in one Lua script.

A bucket holds up to N tokens and refills at N per period, so "100/s" allows bursts of 100 and
100 a second on average. Time comes from the Redis server, so web processes on several machines
with unequal clocks share one bucket fairly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from notifier.stores.scripts import Lua

log = logging.getLogger(__name__)
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    """N requests per period."""

    capacity: int
    per_seconds: float

    @classmethod
    def parse(cls, text: str) -> Rate:
        count, _, unit = text.partition("/")
        return cls(int(count), PERIODS[unit])


class RateLimiter:
    """Take a token from a client's bucket; how long to wait when there is none."""

    _take = Lua("rate_limits/take")

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def take(self, name: str, rate: Rate) -> float:
        """0 when the request may go, else the seconds until it may (raises RedisError)."""
        per_ms = rate.capacity / (rate.per_seconds * 1000)
        allowed, wait_ms = self._take(keys=[f"notifier:rate:{name}"], args=[rate.capacity, per_ms])
        return 0.0 if int(allowed) else float(wait_ms) / 1000

"""Per-client rate limits: a token bucket in Redis, taken in one Lua script.

A bucket holds up to N tokens and refills at N per period, so "100/s" allows bursts of 100 and
100 a second on average. Time comes from the Redis server, so web processes on several machines
with unequal clocks share one bucket fairly.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

log = logging.getLogger(__name__)
PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0}

# KEYS: bucket. ARGV: capacity, tokens per ms. Returns {1, '0'} or {0, ms until one token}.
_TAKE = """
local time = redis.call('TIME')
local now = tonumber(time[1]) * 1000 + tonumber(time[2]) / 1000
local capacity, rate = tonumber(ARGV[1]), tonumber(ARGV[2])
local stored = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(stored[1]) or capacity
local at = tonumber(stored[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local allowed = 0
if tokens >= 1 then
  tokens = tokens - 1
  allowed = 1
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(capacity / rate) + 1000)
if allowed == 1 then return {1, '0'} end
return {0, tostring((1 - tokens) / rate)}
"""


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

    def __init__(self, client: redis.Redis) -> None:
        self._take = client.register_script(_TAKE)

    def take(self, name: str, rate: Rate) -> float:
        """0 when the request may go, else the seconds until it may (raises RedisError)."""
        per_ms = rate.capacity / (rate.per_seconds * 1000)
        allowed, wait_ms = self._take(keys=[f"notifier:rate:{name}"], args=[rate.capacity, per_ms])
        return 0.0 if int(allowed) else float(wait_ms) / 1000

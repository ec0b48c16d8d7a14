"""What every part of the batch store shares: its Redis and the retention."""

from __future__ import annotations

from redis import Redis


class StoreBase:
    """The state every part of the store reads: set once, by the store's constructor."""

    def __init__(self, redis: Redis, ttl: int) -> None:
        self.redis = redis
        self.ttl = ttl

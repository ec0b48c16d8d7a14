"""What every part of the batch store shares: its Redis, the retention, and the secret that
keys the message log's hashes of its rows' recipients (see notifications/log.py)."""

from __future__ import annotations

from redis import Redis


class StoreBase:
    """The state every part of the store reads: set once, by the store's constructor."""

    def __init__(self, redis: Redis, ttl: int, *, log_secret: bytes = b"") -> None:
        self.redis = redis
        self.ttl = ttl
        self.log_secret = log_secret

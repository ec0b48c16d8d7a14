"""Idempotency-Key slots in Redis (see ``notifier.api.idempotency`` for the HTTP side).

Per client, a key's slot ``notifier:idem:{client}:{sha256(key)}`` holds the fingerprint of the
first request and, once it succeeded, its answer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redis import Redis

from notifier.stores.scripts import Lua

KEEP = 24 * 3600
# A slot whose first request died mid-way frees itself after this many seconds.
PENDING = 30


@dataclass(frozen=True)
class Answer:
    """A stored first answer."""

    status: int
    body: str
    location: str


class IdempotencyKeys:
    """Reserve a key for a request, keep its answer, or free it."""

    _reserve = Lua("idempotency/reserve")

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def slot(client: str, key: str) -> str:
        return f"notifier:idem:{client}:{hashlib.sha256(key.encode()).hexdigest()}"

    def reserve(self, slot: str, fingerprint: str) -> str | Answer:
        """``new`` (ours now), ``conflict``, ``pending`` (another request has it), or its answer."""
        state, *stored = self._reserve(keys=[slot], args=[fingerprint, PENDING])
        if state == "done":
            status, body, location = stored
            return Answer(int(status), str(body), str(location))
        return str(state)

    def keep(self, slot: str, answer: Answer) -> None:
        """Keep the answer for 24 hours, in one round trip."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(
                slot,
                mapping={
                    "state": "done",
                    "status": answer.status,
                    "body": answer.body,
                    "location": answer.location,
                },
            )
            pipe.expire(slot, KEEP)
            pipe.execute()

    def free(self, slot: str) -> None:
        """Forget the slot: the request was refused, the caller may retry with the key."""
        self.redis.delete(slot)

"""Idempotency-Key slots in Redis (see ``notifier.api.idempotency`` for the HTTP side).

Per client, a key's slot ``notifier:idem:{client}:{sha256(key)}`` holds the fingerprint of the
first request, the id of what it stores (noted as soon as the record means the send is
accepted: see ``queueing.Intake``) and, once it succeeded, its answer.

The id closes the one gap between storing and keeping the answer: a process that dies there
(after the record and its task are in Redis, before the answer is) leaves the slot pending, and
a retry that waited the slot out would send a second time. With the id noted, the retry finds
the record and answers from it; an id whose record never came (the process died before storing)
frees the slot once it is older than a request can live.
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
class Pending:
    """A slot whose first request has not answered yet: the id it noted (``""`` before it noted
    one), the status its answer gives, and how long ago it noted it."""

    id: str = ""
    status: str = ""
    age: float = 0.0


@dataclass(frozen=True)
class Answer:
    """A stored first answer."""

    status: int
    body: str
    location: str


class IdempotencyKeys:
    """Reserve a key for a request, keep its answer, or free it."""

    _reserve = Lua("idempotency/reserve")
    _note = Lua("idempotency/note")

    def __init__(self, redis: Redis) -> None:
        self.redis = redis

    @staticmethod
    def slot(client: str, key: str) -> str:
        return f"notifier:idem:{client}:{hashlib.sha256(key.encode()).hexdigest()}"

    def reserve(self, slot: str, fingerprint: str, dead: str = "") -> str | Pending | Answer:
        """``new`` (ours now), ``conflict``, :class:`Pending` (another request has it), or its
        answer. ``dead``: the id a pending slot noted whose record never came; the slot is ours
        if it still holds that id."""
        state, *stored = self._reserve(keys=[slot], args=[fingerprint, PENDING, dead])
        if state == "done":
            status, body, location = stored
            return Answer(int(status), str(body), str(location))
        if state == "pending":
            noted, status, age = stored
            return Pending(str(noted), str(status), int(age or 0) / 1000)
        return str(state)

    def note(self, slot: str, fingerprint: str, found_id: str, status: str) -> None:
        """Note the id the request holding ``slot`` stores, and what its answer's status will
        be; the slot then lives as long as a kept answer."""
        self._note(keys=[slot], args=[fingerprint, found_id, status, KEEP])

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

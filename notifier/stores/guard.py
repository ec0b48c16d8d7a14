"""The bounce-rate guard: each client's mails sent, permanent bounces and complaints over a sliding
24 hours, and whether its mail is paused.

Counts are kept an hour a bucket, ``notifier:guard:{<client>}:<hour>`` (a hash of ``sent``,
``bounced``, ``complained``; ``<hour>`` the Unix time // 3600), each expiring :data:`BUCKET_TTL`
seconds after its last count: the window is this hour's bucket and the 23 before it, so memory
is at most 25 small hashes a client whatever it sends. ``notifier:guard:{<client>}`` holds the
pause (JSON ``{"kind", "count", "volume", "at"}``) and the warnings given. Every key of a client
carries its name as the hash tag: one slot, as its suppression list.

A mail counts once toward ``sent`` when a provider takes it (counted with the send's outcome), a
permanent bounce or a complaint once a mail. Each bounce and complaint weighs the window's rate
(``lua/guard/note.lua``): at the warning rate a warning is given once, at the pause rate the
client's mail is paused until :meth:`BounceGuard.resume`, which starts the window again.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis import Redis, WatchError
from redis.client import Pipeline

from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339

HOUR = 3600
WINDOW = 24  # hours: this one and the 23 before it
BUCKET_TTL = (WINDOW + 1) * HOUR
RateKind = Literal["bounce", "complaint"]
COUNTED: dict[RateKind, str] = {"bounce": "bounced", "complaint": "complained"}


def guard_key(client: str) -> str:
    return f"notifier:guard:{{{client}}}"


def bucket_key(client: str, hour: int) -> str:
    return f"{guard_key(client)}:{hour}"


def window(client: str, now: float) -> list[str]:
    """The buckets of the window ending ``now``, this hour's first."""
    hour = int(now // HOUR)
    return [bucket_key(client, hour - back) for back in range(WINDOW)]


def count_sent(pipe: Pipeline, client: str, now: float) -> None:
    """Queue on ``pipe`` the count of a mail a provider took for ``client``."""
    bucket = bucket_key(client, int(now // HOUR))
    pipe.hincrby(bucket, "sent", 1)
    pipe.expire(bucket, BUCKET_TTL)


@dataclass(frozen=True)
class Thresholds:
    """The settings: the volume below which no rate counts, and each rate's warn and pause."""

    min_volume: int
    warn: dict[RateKind, float]
    pause: dict[RateKind, float]


@dataclass(frozen=True)
class Share:
    """``count`` bounces (or complaints) of ``volume`` mails: a rate."""

    count: int
    volume: int

    @property
    def rate(self) -> float:
        return self.count / self.volume if self.volume else 0.0


@dataclass(frozen=True)
class Pause(Share):
    """Why a client's mail is paused: which rate, what it was, since when."""

    kind: RateKind
    at: str


@dataclass(frozen=True)
class Verdict(Share):
    """What a bounce or complaint came to: ``ok``, ``warn``, ``pause``, ``paused`` (before), or
    ``before`` (a mail sent before the last resume: not counted);
    ``new`` when reached now (a pause made, a warning first given)."""

    verdict: Literal["ok", "warn", "pause", "paused", "before"]
    new: bool


@dataclass(frozen=True)
class Figures:
    """A client's window as /metrics shows it."""

    volume: int
    counts: dict[RateKind, int]
    pause: Pause | None

    def rate(self, kind: RateKind) -> float:
        return self.counts[kind] / self.volume if self.volume else 0.0

    def warned(self, kind: RateKind, thresholds: Thresholds) -> bool:
        """Whether the rate is at its warning threshold, over the minimum volume."""
        return self.volume >= thresholds.min_volume and self.rate(kind) >= thresholds.warn[kind]


class BounceGuard:
    """Count, weigh, pause and resume the clients' mail."""

    _note = Lua("guard/note")

    def __init__(self, redis: Redis, thresholds: Thresholds) -> None:
        self.redis = redis
        self.thresholds = thresholds

    def note(self, client: str, kind: RateKind, sent: float | None = None) -> Verdict:
        """Count a mail's first permanent bounce (``bounce``) or complaint for ``client`` and
        weigh the window's rate; nothing for a mail ``sent`` (Unix seconds) before the client's
        last resume: the window it was counted in is gone, and the new one counts the mail sent
        after it, a batch's rows queued before the resume included."""
        t = self.thresholds
        now = time.time()
        found = self._note(
            keys=[guard_key(client), *window(client, now)],
            args=[COUNTED[kind], BUCKET_TTL, t.min_volume, t.warn[kind], t.pause[kind],
                  rfc3339(now), kind, "" if sent is None else sent],
        )  # fmt: skip
        verdict, new, count, volume = found
        return Verdict(count=int(count), volume=int(volume), verdict=verdict, new=bool(new))

    def paused(self, client: str) -> Pause | None:
        """Why ``client``'s mail is paused; None when it is not."""
        return _pause(cast(str | None, self.redis.hget(guard_key(client), "paused")))

    def resume(self, client: str, *, only_paused: bool = False) -> Pause | None:
        """Let ``client``'s mail go again and start its window afresh; the pause it was under
        (None if it was not paused). ``only_paused``: leave the window of a client that is not
        paused as it is (checked and done in one step: two operators' resumes at once empty
        it once)."""
        hour = int(time.time() // HOUR)
        buckets = [bucket_key(client, hour - back) for back in range(WINDOW + 1)]
        with self.redis.pipeline(transaction=True) as pipe:
            while True:
                try:
                    pipe.watch(guard_key(client))  # type: ignore[no-untyped-call]
                    was = cast(str | None, pipe.hget(guard_key(client), "paused"))
                    if was is None and only_paused:
                        return None
                    pipe.multi()
                    pipe.delete(guard_key(client), *buckets)
                    # The bounces of mail sent before now are the old window's (to the
                    # millisecond: one sent in the same millisecond is the new window's).
                    pipe.hset(guard_key(client), "resumed", math.floor(time.time() * 1000) / 1000)
                    pipe.execute()
                    return _pause(was)
                except WatchError:
                    continue  # paused or resumed meanwhile: look again

    def figures(self, clients: Sequence[str]) -> dict[str, Figures]:
        """Each client's window now (one round trip)."""
        now = time.time()
        with self.redis.pipeline(transaction=False) as pipe:
            for client in clients:
                pipe.hget(guard_key(client), "paused")
                for bucket in window(client, now):
                    pipe.hmget(bucket, "sent", "bounced", "complained")
            answers = pipe.execute()
        found: dict[str, Figures] = {}
        step = WINDOW + 1
        for index, client in enumerate(clients):
            paused, *buckets = answers[index * step : (index + 1) * step]
            sums = [sum(int(b[i] or 0) for b in buckets) for i in range(3)]
            counts: dict[RateKind, int] = {"bounce": sums[1], "complaint": sums[2]}
            found[client] = Figures(sums[0], counts, _pause(paused))
        return found


def _pause(raw: str | None) -> Pause | None:
    if raw is None:
        return None
    found = json.loads(raw)
    return Pause(
        count=int(found["count"]), volume=int(found["volume"]), kind=found["kind"], at=found["at"]
    )

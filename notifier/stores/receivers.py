"""Each callback receiver's run of failures, and the hold it puts on its callbacks (a breaker).

A receiver is a client's ``callback_url``. Every process that sends callbacks shares what one
learns here, so a receiver that keeps failing is called by one process at a time, not by all:

* ``notifier:receiver:{<url hash>}``: hash ``failures`` (calls in a row that got no 2xx) and
  ``until`` (epoch seconds: while it lies ahead, the receiver's callbacks are held, not tried);
  it ends 24 hours after the last failure, as the callbacks themselves do;
* ``notifier:receiver:{<url hash>}:probe``: while it lives, one call (the probe) is finding out
  whether a receiver whose hold ran out answers again; the others wait another hold's length.

From the :data:`THRESHOLD`-th failure in a row on, each failure holds the receiver for
``base * 2**(failures - THRESHOLD)`` seconds, up to ``cap``: the delivery retries' backoff
(``NOTIFIER_RETRY_BASE``, ``NOTIFIER_RETRY_CAP``). A 2xx ends the run. Both keys of a receiver
share one hash tag, so each step stays in one slot of a Redis Cluster.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import cast

from redis import Redis

# Failures in a row before the receiver is held: one timeout or 500 between good answers is
# its callback's own retry, not a reason to hold every other one.
THRESHOLD = 3
KEPT = 24 * 3600  # as long as a callback is retried


def key(url: str) -> str:
    return f"notifier:receiver:{{{hashlib.sha256(url.encode()).hexdigest()[:32]}}}"


@dataclass(frozen=True)
class Standing:
    """Where a receiver stands: its failures in a row, and how long its callbacks must wait
    before one may call it (0: now)."""

    failures: int
    wait: float


class Receivers:
    """Count each receiver's failures, hold the ones that keep failing, and let one probe
    through when a hold runs out."""

    def __init__(self, redis: Redis, *, base: float, cap: float, probe_lease: float) -> None:
        self.redis = redis
        self._base = base
        self._cap = cap
        self._probe_ms = max(1, int(probe_lease * 1000))

    def standing(self, url: str) -> Standing:
        """Where ``url`` stands now. Past a hold, the first to ask is the probe (wait 0) and the
        others wait for its answer."""
        raw = cast(list[str | None], self.redis.hmget(key(url), ["failures", "until"]))
        failures = int(raw[0] or 0)
        if failures < THRESHOLD:
            return Standing(failures, 0.0)
        left = float(raw[1] or 0) - time.time()
        if left > 0:
            return Standing(failures, left)
        if self.redis.set(f"{key(url)}:probe", "1", nx=True, px=self._probe_ms):
            return Standing(failures, 0.0)
        # Another hold's length, at least the probe's time: the probe's answer ends it early
        # (a 2xx) or starts a longer one, and either way waiting callbacks look again seldom.
        probing = self.redis.pttl(f"{key(url)}:probe")
        return Standing(failures, max(probing / 1000, 0.1, self._hold(failures)))

    def failed(self, url: str) -> int:
        """Count a call to ``url`` that got no 2xx; its failures in a row now."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hincrby(key(url), "failures", 1)
            pipe.expire(key(url), KEPT)
            failures = int(pipe.execute()[0])
        if failures >= THRESHOLD:
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.hset(key(url), "until", repr(time.time() + self._hold(failures)))
                pipe.delete(f"{key(url)}:probe")
                pipe.execute()
        return failures

    def _hold(self, failures: int) -> float:
        return float(min(self._cap, self._base * 2 ** min(failures - THRESHOLD, 62)))

    def recovered(self, url: str) -> None:
        """A 2xx from ``url``: its run of failures, and any hold, are over."""
        self.redis.delete(key(url), f"{key(url)}:probe")

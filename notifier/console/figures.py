"""What the overview and the clients page show, read from what /metrics reads (the state
collector, the guard) and from the sends counted each minute."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import redis

from notifier.api.health import unready
from notifier.lanes import LANES
from notifier.runtime import Runtime
from notifier.stores.guard import RateKind
from notifier.stores.notifications.sends import by_minute


@dataclass(frozen=True)
class Lane:
    name: str
    depth: int | None  # None: the broker did not say
    sent: list[int]  # a minute each over the last hour, the minute under way last
    failed: list[int]


@dataclass(frozen=True)
class Overview:
    lanes: list[Lane]
    provider_errors: dict[str, int]
    failures: dict[str, int]  # live notifications failed or undelivered, by provider
    beat_last_run: float | None
    scheduled: int
    overdue: float
    redis_up: bool
    redis_headroom: float | None
    unready: list[str]
    minutes: int = 60
    now: float = field(default_factory=time.time)


def _samples(rt: Runtime) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The state collector's samples (as a scrape of /metrics reads them), by name."""
    found: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in rt.metrics.collect():
        for sample in family.samples:
            found.setdefault(sample.name, []).append((sample.labels, sample.value))
    return found


def _one(samples: dict[str, list[tuple[dict[str, str], float]]], name: str) -> float | None:
    values = samples.get(name)
    return values[0][1] if values else None


def overview(rt: Runtime) -> Overview:
    """The service now: each lane's depth and sends, failures, beat, Redis and the broker."""
    now = time.time()
    samples = _samples(rt)
    depths = {labels["queue"]: int(v) for labels, v in samples.get("notifier_queue_depth", [])}
    try:
        minutes = by_minute(rt.redis, now)
    except redis.RedisError:
        minutes = [{} for _ in range(60)]
    lanes = [
        Lane(
            name=lane,
            depth=depths.get(lane),
            sent=[m.get(f"lane:{lane}:sent", 0) for m in minutes],
            failed=[m.get(f"lane:{lane}:failed", 0) for m in minutes],
        )
        for lane in LANES
    ]
    errors: dict[str, int] = {}
    for labels, value in samples.get("notifier_provider_errors_total", []):
        errors[labels["provider"]] = errors.get(labels["provider"], 0) + int(value)
    failures: dict[str, int] = {}
    for labels, value in samples.get("notifier_failures_total", []):
        failures[labels["provider"]] = failures.get(labels["provider"], 0) + int(value)
    last = _one(samples, "notifier_scheduled_dispatch_last_run_timestamp_seconds")
    return Overview(
        lanes=lanes,
        provider_errors=dict(sorted(errors.items())),
        failures=dict(sorted(failures.items())),
        beat_last_run=last or None,
        scheduled=int(_one(samples, "notifier_scheduled") or 0),
        overdue=float(_one(samples, "notifier_scheduled_overdue_seconds") or 0.0),
        redis_up=_one(samples, "notifier_redis_up") == 1,
        redis_headroom=_one(samples, "notifier_redis_memory_headroom_ratio"),
        unready=unready(),
        now=now,
    )


@dataclass(frozen=True)
class Traffic:
    """One kind of a client's notifications over the last hour."""

    kind: str
    sent: int
    failed: int

    @property
    def failure_rate(self) -> float:
        total = self.sent + self.failed
        return self.failed / total if total else 0.0


@dataclass(frozen=True)
class ClientFigures:
    name: str
    mode: str  # live or test
    traffic: list[Traffic]
    volume_24h: int  # mails a provider took over 24 h (the guard's window)
    rates: dict[RateKind, float]
    warning: list[RateKind]
    paused: str | None  # why, when the guard paused its mail


def clients(rt: Runtime) -> list[ClientFigures]:
    """Each client: its last hour by kind, its bounce and complaint rates, its guard."""
    names = sorted({c.client: c.mode for c in rt.clients.values()}.items())
    minutes = by_minute(rt.redis, time.time())
    counted: dict[tuple[str, str, str], int] = {}
    for minute in minutes:
        for name, value in minute.items():
            what, _, rest = name.partition(":")
            client, _, kind_outcome = rest.partition(":")
            kind, _, outcome = kind_outcome.rpartition(":")
            if what == "client" and kind:
                key = (client, kind, outcome)
                counted[key] = counted.get(key, 0) + value
    figures = rt.guard.figures([name for name, _ in names])
    t = rt.guard.thresholds
    found = []
    for name, mode in names:
        kinds = sorted({kind for client, kind, _ in counted if client == name})
        traffic = [
            Traffic(
                kind, counted.get((name, kind, "sent"), 0), counted.get((name, kind, "failed"), 0)
            )
            for kind in kinds
        ]
        guard = figures[name]
        kinds_rated: tuple[RateKind, ...] = ("bounce", "complaint")
        rates = {kind: guard.rate(kind) for kind in kinds_rated}
        warning = [kind for kind in kinds_rated if guard.warned(kind, t)]
        paused = (
            None
            if guard.pause is None
            else f"{guard.pause.kind} rate {guard.pause.rate:.1%} of {guard.pause.volume} mails,"
            f" since {guard.pause.at}"
        )
        found.append(ClientFigures(name, mode, traffic, guard.volume, rates, warning, paused))
    return found

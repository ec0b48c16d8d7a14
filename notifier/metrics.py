"""Prometheus metrics.

Two sources, merged at scrape time:

* per-request metrics of the web processes, kept by ``prometheus_client`` (in its
  multiprocess mode under gunicorn, so every worker process is counted; see gunicorn_conf.py);
* what happened to notifications, counted in Redis by the store's Lua scripts, so every
  worker on every machine adds to one total, plus the queue depth read from the broker, and
  the latency histograms kept beside those counters (see notifier.stores.latency).
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import redis
from celery import Celery
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import REGISTRY, Collector

from notifier.stores.batch_counts import SCHEDULED
from notifier.stores.guard import BounceGuard, RateKind
from notifier.stores.latency import BUCKETS, DELIVERY, PREFIX, QUEUE_WAIT
from notifier.stores.notifications import dispatched_at_keys, metrics_keys
from notifier.stores.slots import SHARDS, every_shard

log = logging.getLogger(__name__)

REQUESTS = Counter(
    "notifier_http_requests", "HTTP requests answered", ["route", "method", "status"]
)
LATENCY = Histogram(
    "notifier_http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)


class StateCollector(Collector):
    """Notification counters and queue depth, read from Redis at each scrape."""

    def __init__(
        self,
        client: redis.Redis,
        queues: Sequence[str],
        broker_depths: Callable[[], dict[str, int]] | None = None,
    ) -> None:
        self._redis = client
        self._queues = queues  # the broker's lists (the lanes), when the broker is this Redis
        self._broker_depths = broker_depths  # another broker's queue lengths, asked of it

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("notifier_redis_up", "1 when Redis answered this scrape")
        try:
            with self._redis.pipeline(transaction=False) as pipe:
                # Every shard's share (see notifier.stores.slots), added up below.
                for key in metrics_keys():
                    pipe.hgetall(key)
                for key in every_shard(SCHEDULED):
                    pipe.zcard(key)
                    pipe.zrange(key, 0, 0, withscores=True)
                for key in dispatched_at_keys():
                    pipe.get(key)
                for queue in self._queues:
                    pipe.llen(queue)
                answers = pipe.execute()
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from _memory(self._redis)
        n = len(SHARDS)
        counters: dict[str, int] = {}
        histograms: dict[str, float] = {}  # their sums are fractional
        for shard_counters in answers[:n]:
            for field, value in shard_counters.items():
                if field.startswith(f"{PREFIX}:"):
                    histograms[field] = histograms.get(field, 0.0) + float(value)
                else:
                    counters[field] = counters.get(field, 0) + int(value)
        scheduled = sum(answers[n : 3 * n : 2])
        firsts: list[list[tuple[str, float]]] = [f for f in answers[n + 1 : 3 * n : 2] if f]
        oldest = min(firsts, key=lambda first: first[0][1], default=[])
        stamps = [float(stamp) for stamp in answers[3 * n : 4 * n] if stamp]
        dispatched_at = str(min(stamps)) if stamps else None
        queued = answers[4 * n :]
        yield from _counters(counters)
        yield from _histograms(histograms)
        waiting = GaugeMetricFamily(
            "notifier_scheduled",
            "Entries due later: scheduled notifications, a scheduled batch (one, whatever its"
            " rows), a finished batch's callback",
        )
        waiting.add_metric([], scheduled)
        yield waiting
        yield from _dispatch_health(oldest, dispatched_at)
        lengths = dict(zip(self._queues, queued, strict=True))
        if self._broker_depths is not None:
            lengths = self._broker_depths()
        if lengths:
            depth = GaugeMetricFamily(
                "notifier_queue_depth", "Messages waiting in each lane's queue", labels=["queue"]
            )
            for queue, length in lengths.items():
                depth.add_metric([queue], length)
            yield depth


def _memory(client: redis.Redis) -> Iterator[Metric]:
    """How near Redis is to full: at maxmemory (noeviction) it refuses every new send (503)."""
    try:
        info = client.info("memory")
    except redis.RedisError:  # INFO refused (a locked-down managed Redis): no figures
        return
    used, limit = int(info.get("used_memory", 0)), int(info.get("maxmemory", 0))
    # Without maxmemory Redis never refuses, but the machine's memory still runs out.
    ceiling = limit or int(info.get("total_system_memory", 0))
    for name, help_text, value in (
        ("notifier_redis_memory_used_bytes", "Memory Redis uses (INFO used_memory)", used),
        ("notifier_redis_memory_max_bytes", "Redis's maxmemory (0: none set)", limit),
    ):
        gauge = GaugeMetricFamily(name, help_text)
        gauge.add_metric([], float(value))
        yield gauge
    if ceiling:
        headroom = GaugeMetricFamily(
            "notifier_redis_memory_headroom_ratio",
            "Share of Redis's memory still free: 1 - used / maxmemory (the machine's memory when"
            " no maxmemory is set); at 0 and below Redis refuses writes, and every send is 503",
        )
        headroom.add_metric([], 1 - used / ceiling)
        yield headroom


def amqp_depths(celery: Celery, queues: Sequence[str]) -> Callable[[], dict[str, int]]:
    """Read the lanes' lengths from the broker (:func:`broker_depths`) at each scrape."""
    return lambda: broker_depths(celery, queues)


def broker_depths(celery: Celery, lanes: Sequence[str]) -> dict[str, int]:
    """Each lane's ready messages on the broker (a passive declare, a channel each): 0 for one
    the broker has no queue of (RabbitMQ's lane no worker declared, a Redis broker's empty
    list: kombu says NOT_FOUND for both), none for one it could not say (unreachable: no
    figure rather than a 500). One undeclared lane used to end the reading of all."""
    found: dict[str, int] = {}
    try:
        with celery.connection_for_read() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=2)
            for lane in lanes:
                channel: Any = conn.channel()  # RabbitMQ closes one that asked for no queue
                try:
                    found[lane] = int(channel.queue_declare(queue=lane, passive=True).message_count)
                except conn.channel_errors as e:
                    if getattr(e, "code", None) == 404 or "NOT_FOUND" in str(e):
                        found[lane] = 0
                finally:
                    with contextlib.suppress(Exception):
                        channel.close()
    except Exception as e:
        log.warning("the broker's lanes could not be read: %s", type(e).__name__)
    return found


def _dispatch_health(
    oldest: list[tuple[str, float]], dispatched_at: str | None
) -> Iterator[Metric]:
    """What shows a dead beat (or no worker on the scheduled lane) before users notice."""
    last = GaugeMetricFamily(
        "notifier_scheduled_dispatch_last_run_timestamp_seconds",
        "When scheduled dispatch last ran (Unix time; 0 if never); beat asks for it every second",
    )
    last.add_metric([], float(dispatched_at or 0))
    yield last
    overdue = GaugeMetricFamily(
        "notifier_scheduled_overdue_seconds",
        "How long the oldest scheduled notification has been due but not queued (0 if none)",
    )
    overdue.add_metric([], max(0.0, time.time() - oldest[0][1]) if oldest else 0.0)
    yield overdue


# The counters kept in Redis (see notifier.stores.notifications), by the prefix of their field:
# the series, its help, its labels (the rest of the field, split at ':').
COUNTERS = {
    "final": ("notifier_notifications",
              "Notifications that reached a final status; mode: live, or test (a test key's)",
              ["kind", "status", "mode"]),
    "attempts": ("notifier_delivery_attempts",
                 "Delivery attempts started; mode: live, or test (simulated for a test key)",
                 ["kind", "mode"]),
    "provider_errors": ("notifier_provider_errors", "Failed provider calls", ["provider"]),
    "failures": ("notifier_failures",
                 "Live notifications that ended failed or undelivered, by the provider that last"
                 " had them (none: no provider did, as a code that expired unsent)", ["provider"]),
    "callbacks": ("notifier_callbacks",
                  "Status callback attempts: sent (a 2xx), retrying (to be tried again), failed"
                  " (given up); held: put back without an attempt (no free slot, or its receiver"
                  " held)", ["outcome"]),
    "receipts": ("notifier_receipts", "Delivery receipts that moved a notification",
                 ["provider", "status"]),
    "sms_refused": ("notifier_sms_refused",
                    "SMS (codes and notifications) the fraud guard refused (422), by reason: country,"
                    " blocked_prefix", ["reason"]),
    "captchas_sent": ("notifier_captchas_sent",
                      "Captcha codes a provider took (test keys' aside), by channel and purpose (the"
                      " first 32 purposes of each client; any other as other)",
                      ["channel", "purpose"]),
    "captchas_verified": ("notifier_captchas_verified",
                          "Captcha codes verified good, by channel and purpose: against"
                          " captchas_sent, the verify ratio, which falls under SMS pumping",
                          ["channel", "purpose"]),
    "bounces": ("notifier_bounces",
                "Messages the bounce route took: hard (failed, 5.1.x but 5.1.7/8, or 5.2.1: undelivered,"
                " suppressed), refused (failed, another 5.x.x: undelivered),"
                " expired (failed, 4.x.x: undelivered), soft (delayed: noted on the record),"
                " ignored (not a DSN of ours)", ["kind"]),
    "unsubscribes": ("notifier_unsubscribes",
                     "Recipients who used a one-click unsubscribe link, by client", ["client"]),
    "mail_events": ("notifier_mail_events",
                    "Mail providers' events that changed something, by provider and kind:"
                    " delivered, bounced, dropped, failed (the whole mail refused), soft,"
                    " complained", ["provider", "kind"]),
}  # fmt: skip


def _counters(counters: dict[str, int]) -> Iterator[Metric]:
    by_kind = {
        what: CounterMetricFamily(name, help_text, labels=labels)
        for what, (name, help_text, labels) in COUNTERS.items()
    }
    for field, value in sorted(counters.items()):
        what, _, rest = field.partition(":")
        family = by_kind.get(what)
        if family is None:
            continue
        labels = rest.split(":")
        if len(labels) == {"final": 2, "attempts": 1}.get(what):
            labels.append("live")  # counted before traffic had a mode
        if len(labels) == len(COUNTERS[what][2]):  # a stray field never breaks a scrape
            family.add_metric(labels, float(value))
    yield from by_kind.values()


HISTOGRAMS = {
    QUEUE_WAIT: ("notifier_queue_wait_seconds",
                 "Time a message waited in its lane: from accept (a scheduled one: from its"
                 " dispatch when due) to a worker claiming it, first attempts only"),
    DELIVERY: ("notifier_delivery_seconds",
               "Time from accept (a scheduled one: from its dispatch when due) to the provider"
               " taking the message, retries included; live sends a provider took only"),
}  # fmt: skip


def _histograms(fields: dict[str, float]) -> Iterator[Metric]:
    """The histograms of the fields ``hist:<name>:<lane>:<kind>:<le or sum>``, made cumulative."""
    series: dict[tuple[str, str, str], dict[str, float]] = {}
    for field, value in fields.items():
        parts = field.split(":")
        if len(parts) == 5 and parts[1] in HISTOGRAMS:  # a stray field never breaks a scrape
            series.setdefault((parts[1], parts[2], parts[3]), {})[parts[4]] = value
    families = {
        what: HistogramMetricFamily(name, help_text, labels=["lane", "kind"])
        for what, (name, help_text) in HISTOGRAMS.items()
    }
    for (what, lane, kind), values in sorted(series.items()):
        total = values.pop("sum", 0.0)
        # Every bucket, those nothing fell in too, so quantiles see the same bounds everywhere.
        bounds = {repr(b): b for b in BUCKETS} | {"+Inf": float("inf")}
        for le in values:
            try:
                bounds.setdefault(le, float(le))  # a bound of an earlier release's
            except ValueError:
                continue
        running, buckets = 0.0, []
        for le, _ in sorted(bounds.items(), key=lambda item: item[1]):
            running += values.get(le, 0.0)
            buckets.append((le, running))
        families[what].add_metric([lane, kind], buckets, total)
    yield from families.values()


class GuardCollector(Collector):
    """Each live client's bounce-rate guard, read from Redis at each scrape (one round trip)."""

    def __init__(self, guard: BounceGuard, clients: Sequence[str]) -> None:
        self._guard = guard
        self._clients = clients

    def collect(self) -> Iterator[Metric]:
        try:
            figures = self._guard.figures(self._clients)
        except redis.RedisError:
            return  # notifier_redis_up says so
        t = self._guard.thresholds
        volume = GaugeMetricFamily(
            "notifier_mail_guard_volume",
            "Mails a provider took for the client over the last 24 h (the bounce-rate guard's"
            " window, which a resume starts again)", labels=["client"],
        )  # fmt: skip
        rate = GaugeMetricFamily(
            "notifier_mail_guard_rate",
            "The client's mails over the last 24 h that bounced for good (kind bounce) or drew"
            " a complaint (kind complaint), as a share of its volume", labels=["client", "kind"],
        )  # fmt: skip
        warning = GaugeMetricFamily(
            "notifier_mail_guard_warning",
            "1 while the client's rate is at or past its warning threshold"
            " (NOTIFIER_BOUNCE_RATE_WARN, NOTIFIER_COMPLAINT_RATE_WARN) over the minimum volume",
            labels=["client", "kind"],
        )  # fmt: skip
        paused = GaugeMetricFamily(
            "notifier_mail_guard_paused",
            "1 while the client's mail is paused by the guard (its mail routes answer 403)"
            " until an operator resumes it", labels=["client"],
        )  # fmt: skip
        kinds: tuple[RateKind, ...] = ("bounce", "complaint")
        for client, found in figures.items():
            volume.add_metric([client], found.volume)
            paused.add_metric([client], 1.0 if found.pause else 0.0)
            for kind in kinds:
                rate.add_metric([client, kind], found.rate(kind))
                over = found.warned(kind, t)
                warning.add_metric([client, kind], 1.0 if over and not found.pause else 0.0)
        yield from (volume, rate, warning, paused)


def exposition(state: Collector, *more: Collector) -> bytes:
    """The text of /metrics: request metrics (of every gunicorn worker), the state, and
    ``more`` read from Redis."""
    if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
        requests_registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(requests_registry)  # type: ignore[no-untyped-call]
    else:
        requests_registry = REGISTRY
    state_registry = CollectorRegistry()
    for collector in (state, *more):
        state_registry.register(collector)
    return generate_latest(requests_registry) + generate_latest(state_registry)

"""``dispatch_due``: beat runs it every second to queue what is due: scheduled notifications,
scheduled batches' fan-outs, and finished batches' callbacks."""

from __future__ import annotations

import logging
import time

from celery import shared_task

from notifier.lanes import LANES, TaskNames
from notifier.metrics import broker_depths
from notifier.runtime import Runtime, runtime
from notifier.services.callbacks import BATCH_EVENT
from notifier.stores.batch_counts import DONE_MEMBER, FAN_OUT_MEMBER
from notifier.stores.layout import migrate
from notifier.stores.notifications import record_key
from notifier.timestamps import seconds

log = logging.getLogger(__name__)
# A leased id that was not queued within this many seconds (its dispatcher died) comes due again.
LEASE = 60.0
# A notification queued this long ago and not claimed, while its lane is empty, lost its message.
LOST_AFTER = 30.0
# With a broker other than the state Redis (RabbitMQ, a Redis of its own) the lanes' lengths
# take a connection to it: the sweep runs once in this many seconds, not every second.
BROKER_SWEEP_EVERY = 10


@shared_task(name=TaskNames.DISPATCH_DUE)
def dispatch_due() -> int:
    """Queue every due scheduled notification; how many were queued."""
    rt = runtime()
    if not rt.layout_current:
        # The first run after an upgrade moves the keys an earlier release wrote (once).
        rt.layout_current = migrate(rt.redis, rt.log_secret) is not None
    due = rt.store.lease_due(now=time.time(), lease=LEASE)
    kinds = _kinds(rt, [m for m in due if not m.startswith((FAN_OUT_MEMBER, DONE_MEMBER))])
    for member in due:
        if member.startswith(FAN_OUT_MEMBER):
            rt.fan_out_queue.publish(member.removeprefix(FAN_OUT_MEMBER))
        elif member.startswith(DONE_MEMBER):
            # The same webhook id however often this runs: the client can tell a repeat.
            batch_id = member.removeprefix(DONE_MEMBER)
            rt.callback_queue.publish(
                BATCH_EVENT + batch_id, "done", f"msg_batch_{batch_id}", int(time.time())
            )
        else:
            # The API's publish path: a due notification's message is the one an unscheduled
            # one of its kind gets (a mail's, an SMS's).
            rt.queue_of(kinds.get(member) or "mail").publish(member)
        rt.store.dispatched(member)
    if due:
        log.info("dispatched %d scheduled notifications", len(due))
    if rt.broker_is_state or rt.redis.set(
        "notifier:lost_sweep", "1", nx=True, ex=BROKER_SWEEP_EVERY
    ):
        backlogs = Backlogs(rt)
        requeue_lost(rt, now=time.time(), backlogs=backlogs)
        requeue_lost_fan_outs(rt, now=time.time(), backlogs=backlogs)
        rt.store.publish_owed(time.time())
    return len(due)


class Backlogs:
    """Each lane's length, asked once a sweep: the state Redis's list when it is the broker,
    else the broker's own count (a passive declare: RabbitMQ's, or kombu's of a Redis broker of
    its own). A lane whose length cannot be had counts as backed up: nothing is queued again on
    a guess."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        self.known: dict[str, int] = {}
        self._broker: dict[str, int] | None = None

    def __call__(self, lane: str) -> int:
        if lane not in self.known:
            if self.rt.broker_is_state:
                self.known[lane] = int(self.rt.redis.llen(lane))
            else:
                if self._broker is None:
                    self._broker = broker_depths(self.rt.celery, LANES)
                self.known[lane] = self._broker.get(lane, 1)
        return self.known[lane]

    def queued(self, lane: str) -> None:
        """A message was put in ``lane``: it is not empty now."""
        self.known[lane] = self(lane) + 1


def _kinds(rt: Runtime, ids: list[str]) -> dict[str, str | None]:
    """The kind of each notification of ``ids`` (None for one whose record is gone)."""
    if not ids:
        return {}
    with rt.redis.pipeline(transaction=False) as pipe:
        for notification_id in ids:
            pipe.hget(record_key(notification_id), "kind")
        return dict(zip(ids, pipe.execute(), strict=True))


def requeue_lost(rt: Runtime, *, now: float, backlogs: Backlogs | None = None) -> int:
    """Put back the message of each notification whose message the broker lost; how many.

    kombu takes a message with BRPOP, which removes it from the list at once: when the worker
    dies before it has written the message down as unacknowledged (the instant between the
    reply and that write, which a busy worker's GIL can stretch to milliseconds), or the primary
    dies between handing it out and the worker reading it (a failover), the message is gone. A
    worker's connection that breaks with messages it took but had not started leaves them
    unacknowledged until the visibility timeout (a retry waiting out its delay in a worker too),
    and so does a worker that dies mid-send. The record still says ``queued`` (or ``retrying``,
    past the longest retry delay), or ``sending`` under a lease long run out. While its lane is
    empty, nothing ahead of it could still be on the way, so its task is queued again; the claim
    makes a copy that is not lost after all harmless. With RabbitMQ, or a Redis broker of its
    own, a message is lost another way: a retry whose publish fails (a memory or disk alarm
    blocks publishing) is rejected by Celery, and its record stays ``retrying``.
    """
    backlog = backlogs or Backlogs(rt)
    requeued = 0
    waiting: list[str] = []
    ids = rt.store.open_since(now - LOST_AFTER)
    with rt.redis.pipeline(transaction=False) as pipe:
        for notification_id in ids:
            pipe.hmget(record_key(notification_id), "status", "kind", "batch", "lease_until")
        records = pipe.execute()
    for notification_id, (status, kind, batch, lease_until) in zip(ids, records, strict=True):
        if status == "sending":
            left = float(lease_until or 0) - now
            if left > -LOST_AFTER:
                # Its attempt may be running yet (the watchdog ends it by the lease): looked
                # for again once the lease has run out.
                rt.store.reopened(notification_id, after=max(0.0, left), now=now)
                continue
        elif status not in ("queued", "retrying"):
            rt.store.forget_open(notification_id)
            continue
        queue = rt.queue_of(kind, batch=bool(batch))
        if backlog(queue.queue):
            # A backlog: it may be on its way yet. Looked for again later, so that the oldest
            # ids (a newsletter's rows behind their backlog) do not fill every sweep's look and
            # hide a code whose message was lost in an empty lane.
            waiting.append(notification_id)
            continue
        queue.publish(notification_id)
        backlog.queued(queue.queue)
        rt.store.reopened(notification_id, now=now)
        requeued += 1
    rt.store.reopened_all(waiting, now=now)
    if requeued:
        log.warning("queued again %d notifications whose messages were lost", requeued)
    return requeued


def requeue_lost_fan_outs(rt: Runtime, *, now: float, backlogs: Backlogs | None = None) -> int:
    """Put back the fan-out of each batch whose fan-out message a Redis broker lost; how many.

    A batch is its record and its fan-out message until its rows are made: the message lost
    (a worker killed between BRPOP and its note of the message, a failover, a retry refused by
    a full Redis) left the batch ``queued`` for ever, as no notification of it was there for
    :func:`requeue_lost` to find. So every unfinished batch of every client (the allowance's
    list of them) that is due, was made or due ``LOST_AFTER`` ago, has rows not fanned out and
    is not cancelled, and whose fan-out made no row for ``LOST_AFTER`` (two looks that long
    apart found the same count: a running fan-out makes 500 rows a step), gets its fan-out
    queued again while the batch lane is empty. A copy that was not lost after all (a fan-out
    waiting out a retry's backoff) is harmless: each chunk is made once, in one step with the
    cursor.
    """
    from notifier.stores.batches.keys import batch_key, pending_key

    lane = rt.fan_out_queue.queue
    if (backlogs or Backlogs(rt))(lane):
        return 0  # a backlog: they may be on their way yet
    clients = sorted({c.client for c in rt.clients.values()})
    with rt.redis.pipeline(transaction=False) as pipe:
        for client in clients:
            pipe.hkeys(pending_key(client))
        batch_ids = [str(b) for held in pipe.execute() for b in held]
    if not batch_ids:
        return 0
    fields = ("total", "fanned", "cancelled", "created_at", "send_at", "done_at")
    with rt.redis.pipeline(transaction=False) as pipe:
        for batch_id in batch_ids:
            pipe.hmget(batch_key(batch_id), fields)
        found = pipe.execute()
    requeued = 0
    for batch_id, (total, fanned, cancelled, created, send_at, done) in zip(
        batch_ids, found, strict=True
    ):
        if total is None or done or cancelled == "1" or int(fanned or 0) >= int(total):
            continue
        since = max(seconds(created), seconds(send_at))
        if since > now - LOST_AFTER:
            continue  # not due, or not long enough ago
        seen = f"notifier:fan_out_seen:{batch_id}"
        before = rt.redis.get(seen)
        count, _, at = str(before or "").partition(" ")
        if before is None or count != str(fanned or 0):
            # First seen at this count (or moved on since): looked at again LOST_AFTER on.
            rt.redis.set(seen, f"{fanned or 0} {now}", ex=int(4 * LOST_AFTER))
            continue
        if now - float(at) < LOST_AFTER:
            continue
        rt.redis.set(seen, f"{fanned or 0} {now}", ex=int(4 * LOST_AFTER))
        rt.fan_out_queue.publish(batch_id)
        requeued += 1
    if requeued:
        log.warning("queued again the fan-out of %d batches whose messages were lost", requeued)
    return requeued

"""Status callbacks: POST a notification's status to its client's own service, signed.

A callback is queued in the same Redis step that changes the status (see the store), as a
``send_callback`` task on the ``callbacks`` lane carrying the event: the notification, the
status it reached, a webhook id kept for every retry, and the time. What is POSTed is the
status record as ``GET /v1/notifications/<id>`` shows it, with the event's status (the record
may have moved on by the time a retry goes out).

Receivers are other people's servers, so none of them may take what login codes need, nor
hold up another client's callbacks (:class:`CallbackGate`): each POST has :data:`TIMEOUT`
seconds in all (:mod:`notifier.deadline`); a worker process runs at most a share of its threads
as callbacks, and at most a few of those to one receiver; a receiver that keeps failing is held
(:mod:`notifier.stores.receivers`). A callback that may not go now is :class:`Held`: its task
is put back for later and holds no thread meanwhile.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import requests
from redis import RedisError

from notifier.deadline import DeadlineAdapter, session
from notifier.settings import ApiClient
from notifier.stores.batches import BatchStore
from notifier.stores.notifications import NotificationStore
from notifier.stores.receivers import Receivers
from notifier.webhooks import (
    DestinationRefused,
    PublicOnlyAdapter,
    check_url,
    secret_key,
    signed_headers,
)

log = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds for one POST in all, however slowly the receiver answers
RETRY_FOR = 24 * 3600  # a callback is retried this long after its event, then given up
# A finished batch's event names the batch so: "batch:<id>", status "done".
BATCH_EVENT = "batch:"
# A callback that found no free slot looks again after this, doubling each time it is put
# back, up to BUSY_CAP (and never past NOTIFIER_RETRY_CAP): soon while slots free up every few
# seconds, rarely when a backlog is long, so the waiting callbacks cost little work.
BUSY_WAIT = 0.5
BUSY_CAP = 60.0

Outcome = Literal["sent", "retry", "dropped"]


@dataclass(frozen=True)
class Event:
    """One status a notification reached, to be told to its client."""

    notification_id: str
    status: str
    webhook_id: str
    timestamp: int


class CallbackSender:
    """POSTs callbacks over kept-alive connections, shared by a worker's threads.

    In production only https URLs of public addresses are called (checked before sending, and
    on the connected socket).
    """

    def __init__(self, *, production: bool, max_connections: int) -> None:
        self._production = production
        adapter = PublicOnlyAdapter if production else DeadlineAdapter
        self._session = session(adapter(total=TIMEOUT, max_connections=max_connections))

    def post(self, url: str, secret: str, event: Event, body: bytes) -> int:
        """POST once; the HTTP status. DestinationRefused, or a requests error, otherwise."""
        check_url(url, production=self._production)
        # The attempt's time, not the event's ("every time an attempt is retried the timestamp
        # of the attempt is updated", Standard Webhooks): receivers refuse one older than a few
        # minutes, and a retry after an outage is always older.
        attempted = int(time.time())
        headers = signed_headers(secret_key(secret), event.webhook_id, attempted, body)
        response = self._session.post(url, data=body, headers=headers, allow_redirects=False)
        response.close()
        return response.status_code

    def close(self) -> None:
        self._session.close()


def subject(
    event: Event, *, store: NotificationStore, batches: BatchStore
) -> tuple[str, dict[str, Any]] | None:
    """Whose the event is and what to POST: the notification's record with the event's status,
    or a finished batch's record, as the API shows them; None once expired."""
    if event.notification_id.startswith(BATCH_EVENT):
        batch = batches.get(event.notification_id.removeprefix(BATCH_EVENT))
        return None if batch is None else (batch.client, batch.model_dump())
    record = store.get(event.notification_id)
    return None if record is None else (record.client, {**record.public(), "status": event.status})


@dataclass(frozen=True)
class Held:
    """A callback not attempted now, which is no attempt: look again in ``seconds``."""

    seconds: float
    why: Literal["busy", "receiver busy", "receiver held"]


class CallbackGate:
    """Which callbacks this worker process attempts now; the others are held, never waited for.

    At most ``total`` at once (the rest of the threads stay free for codes and mail whatever
    the receivers do), at most ``per_receiver`` of them to one receiver (a slow one cannot take
    every callback slot), and none to a receiver that :class:`Receivers` holds, but its probe.
    Every wait is at most ``cap`` (NOTIFIER_RETRY_CAP, which stays below the broker's
    visibility timeout).
    """

    def __init__(self, receivers: Receivers, *, total: int, per_receiver: int, cap: float) -> None:
        self.total = total
        self.per_receiver = min(per_receiver, total)
        self._receivers = receivers
        self._cap = cap
        self._lock = threading.Lock()
        self._running = 0
        self._by_receiver: dict[str, list[float]] = {}  # when each call in flight started

    def attempt(self, url: str, deferred: int, call: Callable[[], Outcome]) -> Outcome | Held:
        """Make ``call`` to ``url`` now if a slot is free and the receiver is not held.

        ``deferred``: how often this callback was held before (its waits grow with it). The
        receiver's standing is asked for only with a slot taken, so a probe is never claimed
        and then not made.
        """
        busy = self._enter(url, deferred)
        if busy is not None:
            return busy
        try:
            standing = self._receivers.standing(url)
            if standing.wait > 0:
                # Spread the held callbacks over the first moments after the hold, not one
                # instant: they come back to a receiver that may just have recovered.
                spread = random.random() * min(TIMEOUT, standing.wait)
                return Held(min(self._cap, standing.wait + spread), "receiver held")
            outcome = call()
            if outcome == "retry":
                self._receivers.failed(url)
            elif outcome == "sent" and standing.failures:
                self._receivers.recovered(url)
            return outcome
        finally:
            self._leave(url)

    def _enter(self, url: str, deferred: int) -> Held | None:
        """Take a slot for ``url``; Held when there is none."""
        now = time.monotonic()
        with self._lock:
            if self._running >= self.total:
                return Held(self._busy_wait(BUSY_WAIT, deferred), "busy")
            started = self._by_receiver.setdefault(url, [])
            if len(started) >= self.per_receiver:
                # Its calls have taken this long so far: a receiver that hangs keeps the
                # callbacks waiting for it longer than one that is only busy.
                taking = now - min(started)
                return Held(self._busy_wait(max(BUSY_WAIT, taking), deferred), "receiver busy")
            self._running += 1
            started.append(now)
            return None

    def _leave(self, url: str) -> None:
        with self._lock:
            self._running -= 1
            started = self._by_receiver[url]
            started.remove(min(started))
            if not started:
                del self._by_receiver[url]

    def _busy_wait(self, first: float, deferred: int) -> float:
        """About ``first`` seconds, doubling with each time the callback was held before."""
        ceiling = min(self._cap, BUSY_CAP, first * 2.0 ** min(deferred, 16))
        return ceiling * random.uniform(0.5, 1.0)


def attempt_callback(
    event: Event,
    *,
    deferred: int,
    store: NotificationStore,
    batches: BatchStore,
    client_named: Callable[[str], ApiClient | None],
    sender: CallbackSender,
    gate: CallbackGate,
    retry_at: float | None = None,
) -> Outcome | Held:
    """Attempt the event's callback through ``gate``: its outcome, or Held (``retry_at``: see
    :func:`deliver_callback`)."""
    found = subject(event, store=store, batches=batches)
    client = client_named(found[0]) if found else None
    if found is None or client is None or client.callback_url is None:
        return "dropped"  # expired, or the client's callback was removed since
    body = found[1]
    return gate.attempt(
        client.callback_url,
        deferred,
        lambda: deliver_callback(
            event, store=store, body=body, client=client, sender=sender, retry_at=retry_at
        ),
    )


def deliver_callback(
    event: Event,
    *,
    store: NotificationStore,
    body: dict[str, Any] | None,
    client: ApiClient | None,
    sender: CallbackSender,
    retry_at: float | None = None,
) -> Outcome:
    """Make one attempt at a callback: ``sent`` (a 2xx), ``retry``, or ``dropped`` for good;
    noted on the notification's timeline with its HTTP status and when a failed one is tried
    again (``retry_at``, Unix time; None: it is not)."""
    if body is None or client is None or client.callback_url is None:
        return "dropped"  # expired, or the client's callback was removed since
    assert client.callback_secret is not None  # the settings require the pair
    try:
        status = sender.post(
            client.callback_url,
            client.callback_secret.get_secret_value(),
            event,
            json.dumps(body).encode(),
        )
    except DestinationRefused as e:
        log.error("%s: callback to %s refused: %s", event.notification_id, client.client, e)
        store.count("callbacks:failed")
        _noted(store, event, "refused")
        return "dropped"
    except requests.RequestException as e:
        log.warning("%s: callback failed: %s", event.notification_id, type(e).__name__)
        store.count("callbacks:retrying")
        _noted(store, event, f"no answer ({type(e).__name__})", retry_at=retry_at)
        return "retry"
    if 200 <= status < 300:
        log.info("%s: callback %s answered %d", event.notification_id, event.status, status)
        store.count("callbacks:sent")
        _noted(store, event, f"HTTP {status}", failed=False)
        return "sent"
    log.warning("%s: callback answered %d", event.notification_id, status)
    store.count("callbacks:retrying")
    _noted(store, event, f"HTTP {status}", retry_at=retry_at)
    return "retry"


# A failed callback's retry as its timeline keeps it: "; r=<Unix time>", or that it is not.
RETRY_NOTE = "; r="
GIVEN_UP = "; given up"


def _noted(
    store: NotificationStore,
    event: Event,
    outcome: str,
    *,
    failed: bool = True,
    retry_at: float | None = None,
) -> None:
    """Note a callback's attempt on the notification's timeline (a batch's has none), if Redis
    lets us: a callback made must not be made again because its note was not."""
    if event.notification_id.startswith(BATCH_EVENT):
        return
    detail = event.status
    if failed:
        detail += GIVEN_UP if retry_at is None else f"{RETRY_NOTE}{int(retry_at)}"
    try:
        store.note(event.notification_id, "callback", outcome=outcome, detail=detail)
    except RedisError as e:
        log.warning("%s: the callback's note was lost: %s", event.notification_id, e)

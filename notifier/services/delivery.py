"""The steps every delivery shares: claim the notification, make one attempt, record it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from notifier.errors import PermanentProviderError, ProviderError, TransientProviderError
from notifier.providers.simulated import NAME as SIMULATOR
from notifier.providers.simulated import Outcome as SimulatedOutcome
from notifier.providers.simulated import simulate
from notifier.queueing import Enqueuer, Intake, Note
from notifier.schemas import Notification
from notifier.stores.notifications import NotificationStore

log = logging.getLogger(__name__)


def store_and_queue(
    store: NotificationStore,
    queue: Enqueuer,
    *,
    client: str,
    kind: str,
    payload: dict[str, Any],
    send_at: float | None = None,
    expires: float | None = None,
    reference: str | None = None,
    test: bool = False,
    note: Note | None = None,
    extra: dict[str, str] | None = None,
) -> Notification:
    """Store a new notification and queue its task (unless it waits for ``send_at``).

    A test client's (``test``) is marked so, in its payload and its record: the worker
    simulates its delivery, and /metrics and the logs tell it apart. ``extra``: fields of the
    record its kind has (an SMS's ``segments``).

    Either both happen or neither: a message that cannot be queued takes its record with it,
    and the caller's 503 is true. ``note`` is told its id once it is accepted.
    """
    notification_id = str(uuid.uuid4())
    if test:
        payload = {**payload, "test": True}
    new = NewNotification(
        store, notification_id, client, kind, payload, send_at, reference, test, extra or {}
    )
    return Intake(queue, note).take(notification_id, new, now=send_at is None, expires=expires)


@dataclass(frozen=True)
class NewNotification:
    """A notification a request stores: its record, or, taken back, none."""

    store: NotificationStore
    id: str
    client: str
    kind: str
    payload: dict[str, Any]
    send_at: float | None
    reference: str | None
    test: bool
    extra: dict[str, str]

    def write(self, push: tuple[str, str] | None) -> Notification:
        """Store its record, with the task's message ``push`` in the same transaction."""
        return self.store.create(
            notification_id=self.id,
            client=self.client,
            kind=self.kind,
            payload=self.payload,
            send_at=self.send_at,
            push=push,
            reference=self.reference,
            test=self.test,
            extra=self.extra,
        )

    def take_back(self) -> None:
        """Remove its record."""
        self.store.discard(self.id)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to.

    ``retry`` asks for another attempt after a backoff, before ``deadline`` if one is set;
    ``busy`` asks to look again in ``wait`` seconds, when another task's claim runs out.
    """

    status: Literal["sent", "failed", "retry", "skipped", "busy"]
    attempt: int = 0
    deadline: float | None = None
    wait: float = 0.0


@dataclass(frozen=True)
class Attempt:
    """A claimed notification: the attempt number, what to send, and when it is too late to;
    ``unrecorded``, how many attempts before it may have sent it (their outcome never came)."""

    attempt: int
    payload: dict[str, Any]
    deadline: float | None = None
    unrecorded: int = 0


def attempt_delivery(
    store: NotificationStore,
    notification_id: str,
    *,
    lease: float,
    max_attempts: int,
    send: Callable[[Attempt], Outcome],
    lane: str = "",
) -> Outcome:
    """Claim the notification and make one attempt with ``send``; ``lane``, the queue its
    message came on, labels its latency in /metrics.

    An exception ``send`` does not handle is a bug (ours or a provider's), not the message's:
    the attempt counts as failed with a generic error, since the exception's text can quote the
    message, and is retried with backoff, so a fix that is deployed meanwhile still delivers.
    """
    claimed = begin(store, notification_id, lease=lease, max_attempts=max_attempts, lane=lane)
    if isinstance(claimed, Outcome):
        return claimed
    try:
        return send(claimed)
    except Exception as e:
        return failed_attempt(
            store,
            notification_id,
            claimed.attempt,
            max_attempts=max_attempts,
            error=f"internal error ({type(e).__name__})",
            provider=None,
            deadline=claimed.deadline,
            exc=e,
        )


def begin(
    store: NotificationStore,
    notification_id: str,
    *,
    lease: float,
    max_attempts: int,
    lane: str = "",
) -> Attempt | Outcome:
    """Claim the notification and load its payload; an Outcome when there is nothing to send."""
    claim = store.claim(notification_id, lease=lease, max_attempts=max_attempts, lane=lane)
    if claim.status == "busy":
        # A copy of this message is being handled (or its worker died holding the claim).
        return Outcome("busy", wait=claim.wait)
    if claim.status != "sending":
        # Already final (a redelivered message), cancelled, expired, or out of attempts.
        return Outcome("skipped", claim.attempt)
    if claim.payload is None:
        store.settle(notification_id, "failed", provider=None, error="message content expired")
        return Outcome("failed", claim.attempt)
    return Attempt(claim.attempt, claim.payload, claim.payload.get("deadline"), claim.unrecorded)


def failed_attempt(
    store: NotificationStore,
    notification_id: str,
    attempt: int,
    *,
    max_attempts: int,
    error: str,
    provider: str | None,
    deadline: float | None = None,
    exc: Exception | None = None,
) -> Outcome:
    """Record a transient failure: ``retrying``, or ``failed`` once out of attempts.

    ``exc`` is an unexpected exception: logged as an error with its traceback.
    """
    final = attempt >= max_attempts
    log.log(
        logging.WARNING if exc is None else logging.ERROR,
        "%s attempt %d of %d failed: %s",
        notification_id, attempt, max_attempts, error,
        exc_info=exc,
    )  # fmt: skip
    if store.settle(
        notification_id, "failed" if final else "retrying", provider=provider, error=error
    ):
        return Outcome("skipped", attempt)  # a cancelled batch's row: cancelled, not retried
    return Outcome("failed" if final else "retry", attempt, deadline=deadline)


def failed_for_good(
    store: NotificationStore, notification_id: str, attempt: int, e: ProviderError
) -> Outcome:
    """Record a permanent failure."""
    log.warning("%s failed for good: %s", notification_id, e)
    store.settle(notification_id, "failed", provider=e.provider, error=str(e))
    return Outcome("failed", attempt)


def sent(
    store: NotificationStore,
    notification_id: str,
    attempt: int,
    provider: str,
    provider_ref: str | None = None,
) -> Outcome:
    """Record a delivery, with the provider's id of the message when it gave one."""
    store.settle(notification_id, "sent", provider=provider, provider_ref=provider_ref)
    log.info("%s sent by %s on attempt %d", notification_id, provider, attempt)
    return Outcome("sent", attempt)


def simulated(
    store: NotificationStore,
    notification_id: str,
    attempt: int,
    outcome: SimulatedOutcome,
    *,
    max_attempts: int,
    deadline: float | None = None,
) -> Outcome:
    """A test key's delivery: the outcome its recipient asks for, and no provider called."""
    try:
        ref, receipt = simulate(outcome, attempt)
    except PermanentProviderError as e:
        return failed_for_good(store, notification_id, attempt, e)
    except TransientProviderError as e:
        return failed_attempt(
            store, notification_id, attempt, max_attempts=max_attempts, error=str(e),
            provider=e.provider, deadline=deadline,
        )  # fmt: skip
    done = sent(store, notification_id, attempt, SIMULATOR, ref)
    if receipt is not None:
        error = "simulated: the handset did not take it" if receipt == "undelivered" else None
        store.receipt(SIMULATOR, ref, receipt, error=error)
    log.info("%s simulated for a test key: %s", notification_id, outcome, extra={"mode": "test"})
    return done

"""Claims: a worker takes a notification for one attempt, then records the attempt's outcome.

A claim moves the record to ``sending`` under a lease (a :class:`Claim`); the settle that follows
records ``sent``, ``failed`` or ``retrying``, once a claim, and applies a receipt that came
early. Both are written durably (see :meth:`StoreBase._durably`): they are what makes a send
happen once across a failover, and while Redis refuses writes. A full Redis records an outcome
all the same (``lua/lib/past_full.lua``): a send a provider took is never left ``sending`` for
the sweep to send again because Redis was at ``maxmemory``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis import RedisError

from notifier.redact import redact
from notifier.redisconn import described
from notifier.stores.guard import count_sent
from notifier.stores.notifications.base import list_of
from notifier.stores.notifications.events import MailEvents
from notifier.stores.notifications.keys import (
    FINAL,
    metrics_key,
    payload_key,
    record_key,
    sends_key,
)
from notifier.stores.notifications.receipts import Receipts, early_receipt_key, ref_key
from notifier.stores.notifications.schedule import Schedule
from notifier.stores.scripts import Lua, queue, reloading
from notifier.timestamps import rfc3339

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """What a claim came to: ``sending`` (attempt number ``attempt``), ``busy`` (another
    task holds it for ``wait`` more seconds), or the status that leaves nothing to do."""

    status: str
    attempt: int = 0
    wait: float = 0.0
    payload: dict[str, Any] | None = None  # what to send, with a ``sending`` claim
    # Attempts before this one whose outcome was never recorded (their lease ran out): each may
    # have sent it.
    unrecorded: int = 0


class Claims(Receipts, MailEvents, Schedule):
    """Claim a notification, settle its attempt (a settle applies an early receipt or hands back
    early mail events, and puts a retry's look for a lost message later)."""

    _claim = Lua("notifications/claim")
    _settle = Lua("notifications/settle")
    _index_ref = Lua("notifications/index_ref")

    def claim(
        self, notification_id: str, *, lease: float, max_attempts: int, lane: str = ""
    ) -> Claim:
        """Move the record to ``sending`` for ``lease`` seconds, if no one else holds it.

        ``lane`` is the queue its message came on: the label of its latency histograms (none
        are kept for a claim without one).
        """
        now = time.time()
        claim = uuid.uuid4().hex
        keys = [
            record_key(notification_id),
            payload_key(notification_id),
            metrics_key(notification_id),
            sends_key(notification_id, now),
        ]
        status, attempt, wait, *sending = self._durably(
            lambda: self._claim(
                keys=keys, args=[rfc3339(now), now, lease, max_attempts, claim, lane]
            )
        )
        self._held.claim = (notification_id, claim)
        raw, unrecorded = [*sending, None, 0][:2]
        if status == "failed" and int(attempt) > 0:
            # This claim gave it up (its attempts never finished): the client hears of it too.
            self._tell(notification_id, "failed")
        elif status == "cancelled" and int(attempt) < 0:
            # A row of a cancelled batch, cancelled by this claim.
            self._tell(notification_id, "cancelled")
            attempt = 0
        return Claim(
            status=str(status),
            attempt=int(attempt),
            wait=float(wait),
            payload=None if raw is None else cast(dict[str, Any], json.loads(raw)),
            unrecorded=int(unrecorded or 0),
        )

    def settle(
        self,
        notification_id: str,
        status: str,
        *,
        provider: str | None,
        error: str | None = None,
        only_if_waiting: bool = False,
        provider_ref: str | None = None,
        recipients: Sequence[str] = (),
        volume_of: str | None = None,
    ) -> bool:
        """Record the outcome of an attempt: ``sent``, ``failed`` or ``retrying``; True when a
        ``retrying`` became ``cancelled`` instead (its batch was cancelled meanwhile).

        A final status queues the client's status callback in the same step. With
        ``provider_ref`` (the provider's message id), a receipt can find the notification; one
        that came before this, early, is applied now (mail events kept early are handed back to
        ``kept_events``). ``only_if_waiting`` moves only a record that waits for an attempt
        (scheduled, queued, retrying): not one whose attempt is under way, which may have sent
        it. A mail sent is recorded with its number of ``recipients`` (its distinct addresses,
        which its events kept early are handed back with) and, with ``volume_of``, counted in
        that client's bounce-rate guard.
        """
        final = status in FINAL
        now = time.time()
        callback = self._callback(notification_id, status) if final else None
        # The outcome of this thread's claim carries it: its attempt has one outcome, the first
        # recorded. Made again, or followed by another (an error after the send was recorded,
        # taken for a failed attempt), it changes nothing.
        held = getattr(self._held, "claim", None)
        claim = held[1] if held and held[0] == notification_id else ""
        keys = [
            record_key(notification_id), payload_key(notification_id),
            metrics_key(notification_id), sends_key(notification_id, now), *list_of(callback),
        ]  # fmt: skip
        args = [
            # Provider errors can quote an address or a number back: never keep them.
            status, provider or "", redact(error or ""), rfc3339(now), self.ttl,
            "1" if final else "0", "1" if only_if_waiting else "0", provider_ref or "",
            callback[1] if callback else "", self._callback_clients, claim, now,
            len(recipients) or "",
        ]  # fmt: skip

        def write() -> tuple[int, int, str | None]:
            # One round trip. With the provider's id: indexed before the status moves (a worker
            # that dies in between leaves it indexed; its redelivered task finds the record
            # final and stops), and a receipt that came first, kept under it, read after. Each
            # side writes its key, then reads the other's, so one at least sees the other.
            indexed = bool(provider and provider_ref)
            with self.redis.pipeline(transaction=False) as pipe:
                if indexed:
                    queue(pipe, self._index_ref, [ref_key(provider or "", provider_ref or "")],
                          [notification_id, self.ttl])  # fmt: skip
                queue(pipe, self._settle, keys, args)
                if indexed:
                    pipe.get(early_receipt_key(provider or "", provider_ref or ""))
                answers = pipe.execute()
            _, due, revoked = answers[1 if indexed else 0]
            early = answers[-1] if indexed else None
            return int(due), int(revoked), cast(str | None, early)

        # A send the provider took waits twice as long for a primary to record it, a single
        # Redis that went away included (one restarting comes back): given up, the message is
        # sent again once its claim runs out (see Attempt.sent).
        taken = status == "sent"
        due, revoked, early = self._durably(
            lambda: reloading(write, self._index_ref, self._settle),
            2 * self.patience if taken else None,
            reconnect=taken,
        )
        if status == "retrying" and not revoked:
            # Looked for as lost only once its longest delay is over (see reopened).
            self.reopened(notification_id, after=self.retry_cap)
        if volume_of is not None and status == "sent":
            self._count_sent(volume_of, now)
        self._publish_if_due(notification_id, status, callback, due)
        if revoked:
            self._tell(notification_id, "cancelled")  # its batch was cancelled meanwhile
        if early and provider and provider_ref:
            if early.startswith("{"):  # mail events, a line of JSON each
                self._hand_back(provider, provider_ref, early, recipients)
            else:
                receipt, _, receipt_error = str(early).partition("|")
                self.receipt(provider, provider_ref, receipt, error=receipt_error or None)
        return bool(revoked)

    def _count_sent(self, client: str, now: float) -> None:
        """Count a mail a provider took in ``client``'s bounce-rate guard, if Redis lets us:
        apart from the send's outcome, which a full Redis records all the same and this must
        never make fail (a count needs memory)."""
        try:
            with self.redis.pipeline(transaction=False) as pipe:
                count_sent(pipe, client, now)
                pipe.execute()
        except RedisError as e:
            log.warning("the guard's count of a mail was lost: %s", described(e))

"""Mail providers' events: what became of a sent mail for each of its recipients (delivered,
bounced, dropped, deferred, complained of), or of the whole mail (refused).

An event finds its notification by the provider's message id, as a receipt does
(``notifier:ref:<provider>:<ref>``), and is applied by ``lua/notifications/mail_event.lua``:
once, never moving a record backwards. One that comes before its send is recorded is kept, a
line (the caller's JSON, which names the recipient by its token, never by its address) appended
to ``notifier:receipt:<provider>:<ref>`` for
:data:`~notifier.stores.notifications.receipts.EARLY_RECEIPT_TTL` seconds, and handed back to the
store's ``kept_events`` by the settle that records the send, with the send's recipients: what
an event does beside the record (the suppression list, the bounce-rate guard) is its caller's,
so the caller applies it again then, finding the address by its token among them. Each side
writes its key, then reads the other's, so one at least sees the other; an event applied twice
changes nothing the second time.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, cast

from redis.typing import EncodableT

from notifier.stores.notifications.base import StoreBase, list_of
from notifier.stores.notifications.keys import OPEN_STATUSES, metrics_key, record_key
from notifier.stores.notifications.receipts import EARLY_RECEIPT_TTL, early_receipt_key, ref_key
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339

Kind = Literal["delivered", "bounced", "dropped", "failed", "soft", "complained"]
# The status whose callback an event may queue: the one it moves the record to.
_TELLS: dict[Kind, str] = {
    "delivered": "delivered", "bounced": "undelivered", "dropped": "undelivered",
    "failed": "undelivered",
}  # fmt: skip
# A complaint's callback tells the record's status, which may move meanwhile: made again.
_ATTEMPTS = 3
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Applied:
    """What an event came to: ``moved`` (the record's status), ``noted`` (something new, the
    status as it was), ``duplicate`` (nothing new), ``early`` (kept until the send is recorded:
    or no such message here), or the status that leaves nothing to apply.

    ``client`` is the record's; ``first``: the mail's first permanent bounce, or its first
    complaint (the bounce-rate guard counts each mail once).
    """

    outcome: str
    notification_id: str | None = None
    client: str | None = None
    first: bool = False

    @property
    def new(self) -> bool:
        """Whether the event changed something (a recipient's outcome, a note, the status)."""
        return self.outcome in ("moved", "noted")


class MailEvents(StoreBase):
    """Apply mail providers' events, early or not."""

    _mail_event = Lua("notifications/mail_event")

    def mail_event(
        self, provider: str, ref: str, kind: Kind, *, token: str, note: str, kept: str | None
    ) -> Applied:
        """Apply one event of the mail ``provider`` knows as ``ref``: ``kind`` for the recipient
        of ``token`` (a keyed hash of the address; ``""`` for the whole mail), with its
        ``note`` (see mail_event.lua). ``kept`` is the line to keep should the send not be
        recorded yet (one line of JSON); None for a mail known not to be ours, which is then
        ``unknown`` and kept nowhere."""
        found = cast(str | None, self.redis.get(ref_key(provider, ref)))
        if found is None:
            if kept is None:
                return Applied("unknown")
            self._keep(provider, ref, kept)
            # The send may have been recorded in between: look once more.
            found = cast(str | None, self.redis.get(ref_key(provider, ref)))
            if found is None:
                return Applied("early")
        applied = self._apply(found, provider, kind, token, note)
        if applied.outcome in OPEN_STATUSES and kept is not None:
            # Indexed, but its send not recorded yet (the settle is under way): kept for the
            # settle to hand back, then tried once more in case it came in between.
            self._keep(provider, ref, kept)
            applied = self._apply(found, provider, kind, token, note)
            if applied.outcome in OPEN_STATUSES:
                return Applied("early", found)
        return applied

    def _keep(self, provider: str, ref: str, line: str) -> None:
        early = early_receipt_key(provider, ref)
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.append(early, line + "\n")
            pipe.expire(early, EARLY_RECEIPT_TTL)
            pipe.execute()

    def _apply(
        self, notification_id: str, provider: str, kind: Kind, token: str, note: str
    ) -> Applied:
        for _ in range(_ATTEMPTS):
            tells = _TELLS.get(kind, "")
            if kind == "complained" and self._callbacks is not None:
                tells = cast(str, self.redis.hget(record_key(notification_id), "status") or "")
            callback = self._callback(notification_id, tells) if tells else None
            keys = [record_key(notification_id), metrics_key(notification_id), *list_of(callback)]
            args: list[EncodableT] = [
                kind, token, note, rfc3339(time.time()), self.ttl, provider,
                callback[1] if callback else "", self._callback_clients,
                tells if callback else "",
            ]  # fmt: skip
            outcome, due, first, client = self._mail_event(keys=keys, args=args)
            if outcome != "changed":
                self._publish_if_due(notification_id, tells, callback, due)
                return Applied(str(outcome), notification_id, str(client) or None, bool(first))
        return Applied("changed", notification_id)

    def _hand_back(self, provider: str, ref: str, kept: str, recipients: Sequence[str]) -> None:
        """Hand the events kept for a send that is recorded now to ``kept_events``, with the
        send's ``recipients``, then forget them (one that comes after this read finds the send
        itself). What goes wrong there is logged, never raised: the send is recorded, and must
        not pass for a failed attempt."""
        if self._kept_events is None:
            return
        try:
            lines = [line for line in kept.splitlines() if line]
            self._kept_events(provider, ref, lines, recipients)
            self.redis.delete(early_receipt_key(provider, ref))
        except Exception:
            log.exception("the %s events kept for message %s were not applied", provider, ref)

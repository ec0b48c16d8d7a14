"""Cancelling notifications: a scheduled one (DELETE), or a cancelled batch's rows."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any, cast

from notifier.stores.batch_counts import scheduled_key
from notifier.stores.notifications.base import StoreBase, list_of
from notifier.stores.notifications.keys import metrics_key, payload_key, record_key
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339


class Cancels(StoreBase):
    """Cancel records still in a status that may be cancelled."""

    _cancel = Lua("notifications/cancel")

    def cancel(self, notification_id: str) -> str | None:
        """Cancel a scheduled notification; the status it had (``scheduled`` when it worked)."""
        return self.cancel_many([notification_id])[0]

    def cancel_many(
        self,
        ids: Sequence[str],
        statuses: Sequence[str] = ("scheduled",),
        *,
        client: str | None = None,
    ) -> list[str | None]:
        """Cancel each notification still in one of ``statuses``, in one round trip; the
        status each had (one of ``statuses`` where it worked, None when unknown).

        ``client``, when every one is that client's (a batch's rows): no callback message is
        built for a client that wants none.
        """
        allowed = " " + " ".join(statuses) + " "
        wanted = client is None or f" {client} " in self._callback_clients
        callbacks = [self._callback(i, "cancelled") if wanted else None for i in ids]
        now = rfc3339(time.time())
        with self.redis.pipeline(transaction=False) as pipe:
            for notification_id, callback in zip(ids, callbacks, strict=True):
                keys = [
                    record_key(notification_id), payload_key(notification_id),
                    scheduled_key(notification_id), metrics_key(notification_id),
                    *list_of(callback),
                ]  # fmt: skip
                args = [
                    notification_id, now, callback[1] if callback else "",
                    self._callback_clients, allowed,
                ]  # fmt: skip
                self._cancel(keys=keys, args=args, client=pipe)
            answers = cast(list[list[Any]], pipe.execute())
        for notification_id, callback, (_, due) in zip(ids, callbacks, answers, strict=True):
            self._publish_if_due(notification_id, "cancelled", callback, due)
        return [cast(str | None, before) for before, _ in answers]

"""The status record and its payload: a new one stored (queued or scheduled), read, forgotten.

A record is a hash the API shows; its payload is what a worker sends, deleted once the record is
final. Both expire after the retention (a scheduled one's after its wait as well); a status
change that ends the record's journey sets the retention again from that moment.
"""

from __future__ import annotations

import json
import time
from typing import Any, cast

from redis.typing import EncodableT, FieldT

from notifier.schemas import Complaint, Notification, SoftBounce
from notifier.stores.batch_counts import open_key, scheduled_key
from notifier.stores.latency import QUEUED_AT
from notifier.stores.notifications.keys import payload_key, record_key
from notifier.stores.notifications.log import MessageLog, recipients_of
from notifier.stores.scripts import Lua
from notifier.timestamps import rfc3339


def record_fields(
    *,
    client: str,
    kind: str,
    status: str,
    now: str,
    test: bool,
    send_at: str | None = None,
    queued_at: float | None = None,
    extra: dict[FieldT, EncodableT] | None = None,
) -> dict[FieldT, EncodableT]:
    """The fields of a new record but its id and reference, as the store's hash keeps them;
    ``queued_at``, when its message goes on its lane now (Unix time)."""
    fields: dict[FieldT, EncodableT] = {
        "client": client, "kind": kind, "status": status, "attempts": "0", "provider": "",
        "error": "", "created_at": now, "updated_at": now, "send_at": send_at or "",
        "provider_ref": "", "test_code": "", **(extra or {}),
    }  # fmt: skip
    if test:
        fields["mode"] = "test"  # counted apart in /metrics; never shown
    if queued_at is not None:
        fields[QUEUED_AT] = repr(queued_at)  # where its latency histograms start; never shown
    return fields


# The kinds the API shows (the contract's: mail, sms_captcha) of those the store keeps apart:
# a code by mail is a mail.
SHOWN_KIND = {"mail_captcha": "mail"}


def shown(fields: dict[str, str]) -> Notification:
    # Built without validation: the store wrote these fields itself.
    return Notification.model_construct(
        id=fields["id"],
        client=fields["client"],
        kind=SHOWN_KIND.get(fields["kind"], fields["kind"]),
        status=fields["status"],
        attempts=int(fields.get("attempts", 0)),
        provider=fields.get("provider") or None,
        error=fields.get("error") or None,
        created_at=fields["created_at"],
        updated_at=fields["updated_at"],
        send_at=fields.get("send_at") or None,
        reference=fields.get("reference") or None,
        provider_ref=fields.get("provider_ref") or None,
        test_code=fields.get("test_code") or None,
        soft_bounce=SoftBounce.model_construct(**json.loads(fields["soft_bounce"]))
        if fields.get("soft_bounce")
        else None,
        segments=int(fields["segments"]) if fields.get("segments") else None,
        complaint=Complaint.model_construct(**json.loads(fields["complaint"]))
        if fields.get("complaint")
        else None,
    )


class Records(MessageLog):
    """Store, read and forget records."""

    _discard = Lua("notifications/discard")

    def create(
        self,
        *,
        notification_id: str,
        client: str,
        kind: str,
        payload: dict[str, Any],
        send_at: float | None = None,
        push: tuple[str, str] | None = None,
        reference: str | None = None,
        test: bool = False,
        extra: dict[str, str] | None = None,
    ) -> Notification:
        """Store a new record and its payload in one transaction: queued, or scheduled.

        ``push`` is a (list, message) to LPUSH in the same transaction: the task's message,
        when the broker is this Redis. ``extra``: fields of the record its kind has (an SMS's
        ``segments``).
        """
        now = time.time()
        stamp = rfc3339(now)
        when = None if send_at is None else rfc3339(send_at)
        status = "queued" if send_at is None else "scheduled"
        fields: dict[FieldT, EncodableT] = {
            "id": notification_id,
            "reference": reference or "",
            # A scheduled one's message goes on its lane when it is dispatched.
            **record_fields(
                client=client,
                kind=kind,
                status=status,
                now=stamp,
                test=test,
                send_at=when,
                queued_at=now if send_at is None else None,
                extra={k: v for k, v in (extra or {}).items()},
            ),
        }
        record = shown({str(k): str(v) for k, v in fields.items()})
        # A scheduled record must outlive its wait as well as the usual retention.
        ttl = self.ttl + max(0, int((send_at or now) - now))
        indexing = self.index(
            notification_id, client=client, kind=kind, recipients=recipients_of(payload),
            reference=reference,
        )  # fmt: skip
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(record_key(notification_id), mapping=fields)
            pipe.expire(record_key(notification_id), ttl)
            pipe.set(payload_key(notification_id), json.dumps(payload), ex=ttl)
            if send_at is not None:
                pipe.zadd(scheduled_key(notification_id), {notification_id: send_at})
            else:
                pipe.zadd(open_key(notification_id), {notification_id: int(now)})
            if push is not None:
                pipe.lpush(*push)
            self.queue_index(pipe, indexing)
            answers = pipe.execute(raise_on_error=False)
        for answer in answers[:-1]:
            if isinstance(answer, Exception):
                raise answer
        self.indexed(answers[-1], indexing)
        return record

    def discard(self, notification_id: str) -> bool:
        """Forget a notification that was never accepted (its message could not be queued);
        False, and kept, when a worker has it already (the broker took the message though its
        publish failed: notifications/discard.lua). One script that runs past maxmemory: Redis
        before 7.4 refuses a whole MULTI while full, and a full Redis is one reason a publish
        fails."""
        keys = [
            record_key(notification_id), payload_key(notification_id),
            scheduled_key(notification_id), open_key(notification_id),
        ]  # fmt: skip
        return bool(self._discard(keys=keys, args=[notification_id]))

    def get(self, notification_id: str) -> Notification | None:
        """The record, or None when unknown or expired."""
        fields = cast(dict[str, str], self.redis.hgetall(record_key(notification_id)))
        return shown(fields) if fields else None

    def sent_at(self, notification_id: str) -> float | None:
        """When a provider took it (Unix seconds), as its outcome was recorded; None if not
        sent, or recorded before this was kept."""
        found = cast(str | None, self.redis.hget(record_key(notification_id), "sent_at"))
        return float(found) if found else None

    def client_of(self, notification_id: str) -> str | None:
        """Whose the notification is (for a payload from before payloads named it)."""
        return cast(str | None, self.redis.hget(record_key(notification_id), "client"))

    def payload(self, notification_id: str) -> dict[str, Any] | None:
        """The payload to send, or None once the notification is final or expired."""
        raw = cast(str | None, self.redis.get(payload_key(notification_id)))
        return None if raw is None else cast(dict[str, Any], json.loads(raw))

    def show_test_code(self, notification_id: str, code: str) -> None:
        """Show a test key's captcha code in its status record (never done for a live key)."""
        self.redis.hset(record_key(notification_id), "test_code", code)

"""The message log and a notification's timeline, as the operator console reads them.

STAND-IN: this module is the deliberately simple stand-in that the ``logindex`` branch replaces
with the real indexes (a keyed hash of each recipient, pages by time, a per-notification
timeline kept as it happens). It keeps the interface exactly and nothing more: it scans the
status records (at most :data:`SCAN_LIMIT` of them), finds a recipient only in the payload of a
notification that still has one (scheduled, queued, retrying), and builds a timeline from what
the record holds. Fine for a development store and for tests; not for a million notifications.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from notifier.schemas import Notification
from notifier.stores.notifications import payload_key
from notifier.stores.notifications.records import shown
from notifier.stores.slots import SHARDS, shard_key

if TYPE_CHECKING:
    from notifier.runtime import Runtime

SCAN_LIMIT = 20_000  # records one page looks at, at most (the stand-in's bound)


@dataclass(frozen=True)
class LogFilter:
    """What the message log shows: every field given must match (``recipient`` exactly)."""

    client: str | None = None
    kind: str | None = None
    status: str | None = None
    reference: str | None = None
    since: float | None = None
    until: float | None = None
    recipient: str | None = None  # exact; found through a keyed hash


@dataclass(frozen=True)
class LogPage:
    """A page of the log, newest first; ``next_cursor`` asks for the page after it."""

    rows: list[Notification]
    next_cursor: str | None


@dataclass(frozen=True)
class TimelineEvent:
    """One step of a notification's journey: never its content or recipients."""

    at: float
    what: str
    provider: str | None = None
    outcome: str | None = None
    detail: str | None = None


def page(rt: Runtime, wanted: LogFilter, *, cursor: str | None = None, limit: int = 50) -> LogPage:
    """The notifications ``wanted`` names, newest first, from ``cursor`` on."""
    found: list[tuple[float, Notification]] = []
    for fields in _records(rt):
        record = shown(fields)
        at = _seconds(record.created_at)
        if _matches(rt, wanted, record, at):
            found.append((at, record))
    found.sort(key=lambda pair: (pair[0], pair[1].id), reverse=True)
    if cursor is not None:
        at_text, _, after_id = cursor.partition("|")
        edge = (float(at_text), after_id)
        found = [pair for pair in found if (pair[0], pair[1].id) < edge]
    rows = found[:limit]
    more = len(found) > limit
    next_cursor = f"{rows[-1][0]!r}|{rows[-1][1].id}" if more and rows else None
    return LogPage(rows=[record for _, record in rows], next_cursor=next_cursor)


def timeline(rt: Runtime, notification_id: str) -> list[TimelineEvent] | None:
    """What happened to a notification, in order; None when it is unknown or expired."""
    record = rt.store.get(notification_id)
    if record is None:
        return None
    events = [TimelineEvent(_seconds(record.created_at), "accepted", outcome=record.status)]
    if record.send_at is not None:
        events.append(TimelineEvent(_seconds(record.send_at), "scheduled for"))
    if record.attempts:
        events.append(
            TimelineEvent(
                _seconds(record.updated_at), f"attempt {record.attempts}",
                provider=record.provider, outcome=record.status, detail=record.error,
            )
        )  # fmt: skip
    if record.soft_bounce is not None:
        events.append(TimelineEvent(_seconds(record.updated_at), "soft bounce"))
    if record.complaint is not None:
        events.append(TimelineEvent(_seconds(record.updated_at), "complaint"))
    return sorted(events, key=lambda e: e.at)


def _records(rt: Runtime) -> list[dict[str, str]]:
    """Up to :data:`SCAN_LIMIT` status records, every shard's."""
    found: list[dict[str, str]] = []
    for which in SHARDS:
        keys = list(rt.redis.scan_iter(match=shard_key(which, "n:*"), count=1000))
        with rt.redis.pipeline(transaction=False) as pipe:
            for key in keys[: SCAN_LIMIT - len(found)]:
                pipe.hgetall(key)
            found += [f for f in cast(list[dict[str, str]], pipe.execute()) if "id" in f]
        if len(found) >= SCAN_LIMIT:
            break
    return found


def _matches(rt: Runtime, wanted: LogFilter, record: Notification, at: float) -> bool:
    simple = (
        (wanted.client, record.client), (wanted.kind, record.kind),
        (wanted.status, record.status), (wanted.reference, record.reference),
    )  # fmt: skip
    if any(want is not None and want != have for want, have in simple):
        return False
    if wanted.since is not None and at < wanted.since:
        return False
    if wanted.until is not None and at >= wanted.until:
        return False
    return wanted.recipient is None or wanted.recipient in _recipients(rt, record.id)


def _recipients(rt: Runtime, notification_id: str) -> set[str]:
    """The recipients a pending notification's payload names (none once it is final)."""
    raw = cast(str | None, rt.redis.get(payload_key(notification_id)))
    if raw is None:
        return set()
    payload: dict[str, Any] = json.loads(raw)
    found: set[str] = set()
    for field in ("to", "cc", "bcc", "phone"):
        value = payload.get(field)
        found.update([value] if isinstance(value, str) else value or [])
    return found


def _seconds(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp()

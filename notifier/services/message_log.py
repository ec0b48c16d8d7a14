"""The operator console's message log and a notification's timeline, read from Redis.

:func:`page` reads the message log's indexes (:mod:`notifier.stores.notifications.log`) newest
first: by recipient or reference through their keyed hashes, else the failures for a status a
notification ends unsent in, else by client, else every notification; kind from the entries;
status, client and reference from the records. Each round
reads every shard in one pipelined round trip and the records it found in one or two more; a
page that filters on what the indexes do not hold (a status) looks at a bounded number of
records (:data:`MAX_LOOKED`) and may come back short, with a cursor to go on from.

:func:`timeline` reads one record: its acceptance and queueing from the record's own fields,
then the events the status scripts noted in it (``lua/lib/timeline.lua``).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, cast

from notifier.errors import Refused
from notifier.schemas import Notification, e164
from notifier.services.callbacks import GIVEN_UP, RETRY_NOTE
from notifier.stores.notifications import record_key
from notifier.stores.notifications.log import (
    SHOWN,
    UNSENT,
    Cursor,
    Entry,
    bucket_key,
    kept,
    shard_lists,
    tag,
)
from notifier.stores.notifications.records import shown
from notifier.stores.slots import SHARDS
from notifier.stores.suppressions import normal
from notifier.timestamps import rfc3339

if TYPE_CHECKING:
    from notifier.runtime import Runtime

MAX_LIMIT = 500
KEPT = 20  # events a record keeps (lua/lib/timeline.lua)
ROUNDS = 4  # reads of every shard a page makes at most
MAX_READ = 40  # entries a shard's read answers, at most, for a filter on the records
MAX_LOOKED = 600  # records a page looks at, at most, to filter them (then a cursor)
BUDGET = 2_000  # entries a shard's read looks at, at most, for a tag or a kind
_FILTERED = ("status", "client", "reference")
_RETRY = re.compile(re.escape(RETRY_NOTE) + r"([0-9]+)$")


@dataclass(frozen=True)
class LogFilter:
    """What a page of the log shows: every field given must hold."""

    client: str | None = None
    kind: str | None = None
    status: str | None = None
    reference: str | None = None
    since: float | None = None  # unix seconds (accepted time), inclusive
    until: float | None = None
    recipient: str | None = (
        None  # one exact recipient (address or E.164 phone), found by keyed hash
    )


@dataclass(frozen=True)
class LogPage:
    """A page of the log, newest first, and the cursor of the next (None: none is left)."""

    rows: list[Notification]  # as GET /v1/notifications/<id> shows them
    next_cursor: str | None


@dataclass(frozen=True)
class TimelineEvent:
    """One step of a notification's journey."""

    at: float
    what: str  # "accepted","scheduled","queued","attempt","receipt","event","callback","cancelled"
    provider: str | None = None
    outcome: str | None = None  # e.g. "sent", "failed: HTTP 503", "delivered", "HTTP 200"
    detail: str | None = None  # e.g. "next retry at …"; never content, codes or recipients


@dataclass(frozen=True)
class _Source:
    """The lists a filter reads (one a shard), and the tag an entry of them must carry."""

    lists: list[str]
    tagged: bytes = b""


def page(rt: Runtime, wanted: LogFilter, *, cursor: str | None = None, limit: int = 50) -> LogPage:
    """The notifications ``wanted`` names, newest first, from ``cursor`` (a page's
    ``next_cursor``) on: at most ``limit``."""
    if not 1 <= limit <= MAX_LIMIT:
        raise Refused("limit", f"must be from 1 to {MAX_LIMIT}")
    start = Cursor.read(cursor) if cursor else None
    if cursor and start is None:
        raise Refused("cursor", "not a cursor this log gave")
    kinds = _kinds(wanted.kind)
    source = _source(rt, wanted)
    store = rt.store
    oldest = time.time() - kept(store.ttl)
    since = int(max(wanted.since or 0.0, oldest) * 1e6)
    # The unsent statuses' lists go by the time each ended, the others' by the time each was
    # accepted, which the range is of: there, a record's own acceptance is checked instead of
    # an upper bound (one accepted in the range may have failed after it), and the lower bound
    # holds as it is (nothing failed before it was accepted).
    accepted = wanted.status in UNSENT and (wanted.since, wanted.until) != (None, None)
    top = None if wanted.until is None or accepted else int(wanted.until * 1e6) + 1
    below = [_lower(top, None if start is None else start.below(i)) for i in range(len(SHARDS))]
    filtered = accepted or any(getattr(wanted, name) is not None for name in _FILTERED)
    rows: list[Notification] = []
    looked = 0
    frontier = since
    for round_ in range(ROUNDS):
        need = limit - len(rows)
        want = min(need * 4**round_, MAX_READ) if filtered else need
        scan = store.scan(
            source.lists, below=below, since=since, want=want, budget=BUDGET,
            tagged=source.tagged, kinds=kinds,
        )  # fmt: skip
        entries = _matching(rt, wanted, scan.entries, accepted) if filtered else scan.entries
        looked += len(scan.entries)
        while entries:
            taken, entries = entries[: limit - len(rows)], entries[limit - len(rows) :]
            for entry, record in zip(taken, _records(rt, taken), strict=True):
                if record is None:
                    continue  # gone with its retention, or taken back
                rows.append(record)
                if len(rows) == limit:
                    return LogPage(rows, Cursor(entry.at, entry.shard).text())
        if scan.over:
            return LogPage(rows, None)
        frontier = scan.frontier
        below = [frontier] * len(SHARDS)
        if looked >= MAX_LOOKED:
            break
    return LogPage(rows, Cursor(frontier, 0).text())


def _lower(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _kinds(kind: str | None) -> str:
    if kind is None:
        return ""
    letters = SHOWN.get(kind)
    if letters is None:
        raise Refused("kind", f"must be one of {', '.join(sorted(SHOWN))}")
    return letters


def _source(rt: Runtime, wanted: LogFilter) -> _Source:
    """The narrowest lists for ``wanted``: a recipient's or a reference's bucket, a client's, or
    every notification's."""
    secret = rt.store.log_secret
    if wanted.recipient is not None:
        return _bucket(tag(secret, "to", searched(wanted.recipient)))
    if wanted.reference is not None:
        return _bucket(tag(secret, "ref", wanted.reference))
    if wanted.status in UNSENT:
        return _Source(shard_lists("log:f"))
    if wanted.client is not None:
        return _Source(shard_lists(f"log:c:{wanted.client}"))
    return _Source(shard_lists("log"))


def searched(recipient: str) -> str:
    """A recipient searched for, as the log indexed it: a phone in E.164, as the API keeps one
    (``+86 138 0013 8000`` finds ``+8613800138000``), an address in lower case."""
    text = recipient.strip()
    if text[:1] in ("+", "\uff0b"):
        with contextlib.suppress(ValueError):
            return e164(text)
    return normal(text)


def _bucket(tagged: bytes) -> _Source:
    # A shard's key is found from any id in it: its first character.
    return _Source([bucket_key(which, tagged) for which in SHARDS], tagged)


def _matching(
    rt: Runtime, wanted: LogFilter, entries: list[Entry], accepted: bool = False
) -> list[Entry]:
    """The entries whose record has the status, client and reference ``wanted`` names (and,
    ``accepted``, was accepted in its time range)."""
    with rt.redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.hmget(record_key(entry.id), *_FILTERED, "created_at")
        found = cast(list[list[str | None]], pipe.execute())
    expected = [getattr(wanted, name) for name in _FILTERED]
    low, high = wanted.since or 0.0, wanted.until if wanted.until is not None else math.inf
    return [
        entry
        for entry, (*values, created) in zip(entries, found, strict=True)
        if all(
            want is None or want == (value or None)
            for want, value in zip(expected, values, strict=True)
        )
        and (not accepted or low <= datetime.fromisoformat(created or "").timestamp() <= high)
    ]


def _records(rt: Runtime, entries: list[Entry]) -> list[Notification | None]:
    with rt.redis.pipeline(transaction=False) as pipe:
        for entry in entries:
            pipe.hgetall(record_key(entry.id))
        found = cast(list[dict[str, str]], pipe.execute())
    return [shown(fields) if fields else None for fields in found]


def timeline(rt: Runtime, notification_id: str) -> list[TimelineEvent] | None:
    """A notification's journey, oldest first; None when its record is unknown or expired."""
    fields = cast(dict[str, str], rt.redis.hgetall(record_key(notification_id)))
    if not fields:
        return None
    created = datetime.fromisoformat(fields["created_at"]).timestamp()
    events = [TimelineEvent(created, "accepted")]
    if fields.get("send_at"):
        events.append(TimelineEvent(created, "scheduled", detail=f"due {fields['send_at']}"))
    if fields.get("queued_at"):
        events.append(TimelineEvent(float(fields["queued_at"]), "queued"))
    events += [_event(fields[f"e{i}"]) for i in range(KEPT) if f"e{i}" in fields]
    return sorted(events, key=lambda e: e.at)


def _event(line: str) -> TimelineEvent:
    """An event as lua/lib/timeline.lua keeps it: ``at|what|provider|detail|outcome``."""
    at, what, provider, detail, outcome = [*line.split("|", 4), "", "", "", ""][:5]
    retry = _RETRY.search(detail)
    if retry is not None:
        detail = detail[: retry.start()] + "; next retry at " + rfc3339(int(retry[1]))
    elif detail.endswith(GIVEN_UP):
        detail = detail[: -len(GIVEN_UP)] + "; not retried"
    return TimelineEvent(float(at), what, provider or None, outcome or None, detail or None)

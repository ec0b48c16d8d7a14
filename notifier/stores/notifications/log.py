"""The message log's indexes: every notification, newest first, found by its client, or by one
exact recipient or reference through a keyed hash, a page at a time.

Keys (``{s}``, the shard of the notification: each index is written in the step that stores
its record, so on a Redis Cluster each lives in its records' slot, and a page reads the 16
shards in one pipelined round trip):

* ``notifier:{s}:log``  the shard's notifications;
* ``notifier:{s}:log:c:<client>``  one client's;
* ``notifier:{s}:log:f``  the shard's notifications that ended unsent (:data:`UNSENT`), by when
  they did (what a support desk looks for first, and a status too rare among the others to find
  by reading them: a page of failures that filtered every notification read thousands);
* ``notifier:{s}:log:h:<n>`` (``n`` < :data:`BUCKETS`)  notifications by a *tag*: the first 8
  bytes of an HMAC-SHA-256 of a recipient (a mail address in lower case, an E.164 number) or of
  a reference, keyed by a secret derived from ``NOTIFIER_CAPTCHA_SECRET``; a tag's bucket is its
  first two bytes modulo :data:`BUCKETS`. No recipient is kept in the clear for the search, and
  without the secret a tag cannot be tried against guessed addresses.

Each is a list, its head the newest (``lua/lib/message_log.lua``): an entry is 24 bytes (a log
time in microseconds, the kind, the id's 16 bytes), 32 in a bucket list (its tag first). A
sorted set would cost 60-100 bytes a member; a list packs its entries in 8 KiB listpacks, two
bytes of overhead each, and the log time, strictly rising in each list, stands in for a score:
a page finds where to start by a binary search, in Redis. Status (but the unsent ones), kind
and reference are not indexed: a page filters them while it reads (the entries hold the kind,
the records the rest), looking at a bounded number of entries a call, so a rare status (a
retrying one) gives shorter pages with a cursor rather than a slow one. The failures list is
written where a record ends unsent (settle, claim, receipt, mail_event) and kept for as long
as the record then is.

Entries expire with their records: a list drops its entries older than :func:`kept` (the
retention, and an hour for retries and receipts, after which a record's retention starts
again) from its tail as new ones come, and the whole list expires that long after its newest
entry; a page skips an entry whose record is gone. A notification scheduled further ahead than
an hour leaves the log before its record expires (still shown by its id): keeping every entry
for the longest wait (30 days) would keep five times the entries at the default retention.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from redis.client import Pipeline
from redis.exceptions import NoScriptError, RedisError
from redis.typing import EncodableT

from notifier.redisconn import described
from notifier.stores.notifications.base import StoreBase
from notifier.stores.notifications.keys import record_key
from notifier.stores.scripts import Lua, queue, reloading
from notifier.stores.slots import SHARDS, in_shard, shard_key
from notifier.stores.suppressions import normal

BUCKETS = 1024  # lua/lib/message_log.lua's too
TAG = 8  # bytes of a tag
SLACK = 3600  # an entry outlives the retention by this: retries, receipts, a short wait
# The kinds as the entries spell them, and the kinds the API shows.
LETTERS = {"mail": "m", "mail_captcha": "c", "sms_captcha": "k", "sms": "s"}
SHOWN = {"mail": "mc", "mail_captcha": "c", "sms_captcha": "k", "sms": "s"}
# The statuses of notifications that ended unsent: each also in its shard's failures list.
UNSENT = frozenset({"failed", "undelivered", "suppressed"})
_CURSOR = re.compile(r"^([0-9]{1,17})\.([0-9]{1,2})$")

log = logging.getLogger(__name__)


def kept(ttl: int) -> int:
    """How long an index entry is kept, in seconds, for records kept ``ttl`` after they end."""
    return ttl + SLACK


def log_secret(captcha_secret: bytes) -> bytes:
    """The key of the tags (and of the pseudonyms in key names), derived from the captcha
    secret, as the recipients' tokens and the bounce addresses are."""
    return hmac.new(captcha_secret, b"message-log", "sha256").digest()


def tag(secret: bytes, what: str, value: str, size: int = TAG) -> bytes:
    """The keyed hash a recipient (``what`` ``to``) or a reference (``ref``) is found by, its
    first ``size`` bytes (other stores name their keys by it, with a ``what`` of their own)."""
    return hmac.new(secret, f"{what}\0{value}".encode(), hashlib.sha256).digest()[:size]


def tags_of(secret: bytes, recipients: Iterable[str], reference: str | None) -> bytes:
    """The tags a new notification is indexed by: one a distinct recipient, one its reference."""
    found = dict.fromkeys(tag(secret, "to", normal(r)) for r in recipients if r)
    if reference:
        found[tag(secret, "ref", reference)] = None
    return b"".join(found)


def recipients_of(payload: dict[str, Any]) -> list[str]:
    """A payload's recipients, whatever its kind: a mail's to, cc and bcc, an SMS's number, a
    code's phone or address."""
    found: list[str] = []
    for field in ("to", "cc", "bcc", "phone"):
        value = payload.get(field)
        if isinstance(value, str):
            found.append(value)
        elif isinstance(value, list):
            found += [v for v in value if isinstance(v, str)]
    return found


def bucket_key(notification_id: str, tagged: bytes) -> str:
    """The bucket list of a tag, in the shard of ``notification_id``."""
    return in_shard(notification_id, f"log:h:{int.from_bytes(tagged[:2], 'big') % BUCKETS}")


def log_keys(notification_id: str, client: str, tags: bytes) -> list[str]:
    """The lists a new notification goes in (``lua/lib/message_log.lua``'s ``log_lists``)."""
    return [
        in_shard(notification_id, "log"),
        in_shard(notification_id, f"log:c:{client}"),
        *(bucket_key(notification_id, tags[i : i + TAG]) for i in range(0, len(tags), TAG)),
    ]


@dataclass(frozen=True)
class Cursor:
    """Where a page ends: the next takes the entries before (``at``, ``shard``) in the log's
    order (log time, then shard, both falling)."""

    at: int
    shard: int

    def below(self, shard: int) -> int:
        """The first log time shard ``shard`` does not read from: its entries at ``at`` come
        after the cursor when its index is lower."""
        return self.at + 1 if shard < self.shard else self.at

    def text(self) -> str:
        return f"{self.at}.{self.shard}"

    @classmethod
    def read(cls, text: str) -> Cursor | None:
        """A cursor from its text; None when it is not one."""
        found = _CURSOR.match(text)
        return None if found is None else cls(int(found[1]), int(found[2]))


@dataclass(frozen=True)
class Entry:
    """An entry read: its log time, its shard's index, its kind's letter, the notification."""

    at: int
    shard: int
    kind: str
    id: str


@dataclass(frozen=True)
class Scan:
    """What one read of every shard came to: the entries, newest first, that are complete down
    to ``frontier`` (every shard was read at least that far), and whether the lists are over."""

    entries: list[Entry]
    frontier: int
    over: bool


class MessageLog(StoreBase):
    """Index new notifications; read the indexes newest first."""

    _logged = Lua("notifications/logged")
    _log_page = Lua("notifications/log_page")
    _note = Lua("notifications/note")

    def note(self, notification_id: str, what: str, *, outcome: str, detail: str = "") -> bool:
        """Add an event to a notification's timeline (``lua/lib/timeline.lua``), if its record
        is still kept; never content, codes or recipients."""
        return bool(
            self._note(keys=[record_key(notification_id)], args=[what, "", detail, outcome])
        )

    def index(
        self,
        notification_id: str,
        *,
        client: str,
        kind: str,
        recipients: Sequence[str],
        reference: str | None,
    ) -> tuple[list[str], list[EncodableT]]:
        """The keys and arguments that index a new notification (``notifications/logged``):
        queued in its record's transaction with :meth:`queue_index`."""
        tags = tags_of(self.log_secret, recipients, reference)
        keys = log_keys(notification_id, client, tags)
        return keys, [notification_id, kind, tags, kept(self.ttl)]

    def queue_index(self, pipe: Pipeline, indexing: tuple[list[str], list[EncodableT]]) -> None:
        """Put an indexing in ``pipe``; run it with ``execute(raise_on_error=False)`` and hand
        its answer to :meth:`indexed`."""
        queue(pipe, self._logged, *indexing)

    def indexed(self, answer: object, indexing: tuple[list[str], list[EncodableT]]) -> None:
        """After the transaction, which stored the notification (and queued its message): a
        Redis that lost the script (NOSCRIPT: restarted, flushed, a promoted replica) made the
        rest of it, and the indexing is made again alone.

        An entry that cannot be made is logged and left out of the log, never raised: the
        notification is accepted by then, its message may already be sent, and a 503 would
        have its client send it again. (Seen: a fresh Redis's first mail, its script loaded
        after the transaction while a worker had sent the mail and Redis had filled up.)"""
        keys, args = indexing
        if isinstance(answer, NoScriptError):
            try:
                self._logged(keys=keys, args=args)
                return
            except RedisError as e:
                answer = e
        if isinstance(answer, Exception):
            log.warning(
                "the message log's entry of %s was not made: %s",
                args[0], described(answer),
            )  # fmt: skip

    def scan(
        self,
        lists: Sequence[str],
        *,
        below: Sequence[int | None],
        since: int,
        want: int,
        budget: int,
        tagged: bytes = b"",
        kinds: str = "",
    ) -> Scan:
        """Read ``lists`` (one a shard, in shard order) below each one's ``below`` log time and
        not before ``since``: up to ``want`` entries of each that match ``tagged`` and
        ``kinds``, looking at no more than ``budget`` of each."""
        live = [i for i, bound in enumerate(below) if bound is None or bound > since]
        if not live:
            return Scan([], since, True)

        def read() -> list[Any]:
            with self.redis.pipeline(transaction=False) as pipe:
                for i in live:
                    bound = below[i]
                    args = ["" if bound is None else bound, since, want, budget, tagged, kinds]
                    queue(pipe, self._log_page, [lists[i]], args)
                return pipe.execute()

        answers = reloading(read, self._log_page)
        entries: list[Entry] = []
        frontier, over = since, True
        for i, (done, lowest, *found) in zip(live, cast(list[list[Any]], answers), strict=True):
            if not int(done):
                over = False
                frontier = max(frontier, int(lowest))
            entries += [
                Entry(int(found[j]), i, str(found[j + 1]), str(found[j + 2]))
                for j in range(0, len(found), 3)
            ]
        complete = [e for e in entries if e.at >= frontier]
        complete.sort(key=lambda e: (e.at, e.shard), reverse=True)
        return Scan(complete, frontier, over)


def shard_lists(name: str) -> list[str]:
    """List ``name`` of each shard, in shard order."""
    return [shard_key(which, name) for which in SHARDS]

"""The operator console's message log and timelines, on a real Redis: each filter, a recipient
found by its keyed hash and only there, pages by cursor without gaps or duplicates while new
notifications come, entries that go with their records, and what a timeline shows."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any, cast

import pytest
import redis

from config import Settings
from notifier import create_app
from notifier.errors import Refused
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.schemas import MailRequest
from notifier.services.mail import accept_mail, deliver_mail
from notifier.services.message_log import MAX_LOOKED, LogFilter, page, timeline
from notifier.stores.notifications import record_key
from notifier.stores.notifications.log import kept, shard_lists
from notifier.timestamps import rfc3339
from tests.support.delivery import delivery


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A fresh app's runtime on the test Redis."""
    found: Runtime = create_app(make_settings()).extensions["notifier"]
    return found


def made(
    rt: Runtime, client: str = "shop", *, kind: str = "mail", to: str = "ada@example.com",
    reference: str | None = None, **more: Any,
) -> str:  # fmt: skip
    """Store a new notification (as the services do) and give its id."""
    payload = {"to": [to]} if kind == "mail" else {"to": to}
    notification_id = str(uuid.uuid4())
    rt.store.create(
        notification_id=notification_id, client=client, kind=kind, payload=payload,
        reference=reference, **more,
    )  # fmt: skip
    return notification_id


def ids(found: Any) -> list[str]:
    return [row.id for row in found.rows]


def every_page(rt: Runtime, wanted: LogFilter, limit: int) -> list[str]:
    """Every id ``wanted`` finds, page after page."""
    seen: list[str] = []
    cursor = None
    while True:
        found = page(rt, wanted, cursor=cursor, limit=limit)
        seen += ids(found)
        if found.next_cursor is None:
            return seen
        cursor = found.next_cursor


def test_the_log_is_newest_first_and_shows_records_as_the_api_does(rt: Runtime) -> None:
    made_ = [made(rt, reference=f"order-{n}") for n in range(5)]
    found = page(rt, LogFilter(), limit=3)
    assert ids(found) == made_[::-1][:3]
    assert found.rows[0] == rt.store.get(made_[-1])
    assert ids(page(rt, LogFilter(), cursor=found.next_cursor, limit=3)) == made_[1::-1]


def test_each_filter(rt: Runtime) -> None:
    shop = [made(rt, "shop", reference="order-1"), made(rt, "shop", kind="sms", to="+447700900123")]
    before = time.time()
    while time.time() == before:
        pass  # the next ones are logged after `before`, on a clock that moved
    later = [made(rt, "blog", reference="order-1"), made(rt, "blog", kind="mail_captcha")]
    rt.store.claim(shop[0], lease=30, max_attempts=3)
    rt.store.settle(shop[0], "failed", provider="smtp", error="550 no such user")
    assert ids(page(rt, LogFilter(client="shop"))) == shop[::-1]
    assert ids(page(rt, LogFilter(client="blog"))) == later[::-1]
    assert ids(page(rt, LogFilter(kind="sms"))) == [shop[1]]
    assert ids(page(rt, LogFilter(kind="mail"))) == [later[1], later[0], shop[0]]  # codes too
    assert ids(page(rt, LogFilter(kind="mail_captcha"))) == [later[1]]
    assert ids(page(rt, LogFilter(status="failed"))) == [shop[0]]
    assert ids(page(rt, LogFilter(status="queued", client="shop"))) == [shop[1]]
    assert ids(page(rt, LogFilter(reference="order-1"))) == [later[0], shop[0]]
    assert ids(page(rt, LogFilter(reference="order-1", client="blog"))) == [later[0]]
    assert ids(page(rt, LogFilter(reference="order-2"))) == []
    assert ids(page(rt, LogFilter(since=before))) == later[::-1]
    assert ids(page(rt, LogFilter(until=before))) == shop[::-1]
    assert ids(page(rt, LogFilter(until=before, client="blog"))) == []


def test_a_recipient_is_found_by_its_keyed_hash_and_never_another_client_s(rt: Runtime) -> None:
    mine = made(rt, "shop", to="ada@example.com")
    theirs = made(rt, "blog", to="ada@example.com")
    made(rt, "shop", to="bob@example.com")
    sms = made(rt, "shop", kind="sms", to="+447700900123")
    assert ids(page(rt, LogFilter(client="shop", recipient="Ada@Example.com"))) == [mine]
    assert ids(page(rt, LogFilter(client="blog", recipient="ada@example.com"))) == [theirs]
    assert ids(page(rt, LogFilter(recipient="ada@example.com"))) == [theirs, mine]
    assert ids(page(rt, LogFilter(recipient="+447700900123"))) == [sms]
    assert ids(page(rt, LogFilter(recipient="carol@example.com"))) == []
    # Nothing in Redis holds the address for it: the payload only, while the mail is pending.
    held = [k for k in rt.redis.scan_iter() if b"ada@example.com" in dump(rt, k)]
    assert sorted(held) == sorted(f"notifier:{{{i[0]}}}:p:{i}" for i in (mine, theirs))


def dump(rt: Runtime, key: str) -> bytes:
    """A key's name and value as bytes, whatever its type."""
    raw = redis.Redis(connection_pool=redis.ConnectionPool.from_url(rt.redis_url))
    readers: dict[bytes, Callable[[], Any]] = {
        b"string": lambda: raw.get(key),
        b"hash": lambda: raw.hgetall(key),
        b"list": lambda: raw.lrange(key, 0, -1),
        b"zset": lambda: raw.zrange(key, 0, -1),
        b"set": lambda: raw.smembers(key),
    }
    return key.encode() + repr(readers[cast(bytes, raw.type(key))]()).encode()


def test_a_sent_mail_leaves_its_recipient_nowhere_in_redis(rt: Runtime) -> None:
    request = MailRequest.model_validate(
        {"to": ["ada@example.com"], "subject": "Hi", "text": "Hello", "reference": "r-1"}
    )
    sent = accept_mail(
        request, client="shop", sender="n@example.com", store=rt.store, templates=rt.templates,
        queue=rt.mail_queue,
    )  # fmt: skip
    deliver_mail(delivery(rt, mail=MemoryMailProvider()), sent.id)
    assert [k for k in rt.redis.scan_iter() if b"ada@example.com" in dump(rt, k)] == []
    assert ids(page(rt, LogFilter(recipient="ada@example.com"))) == [sent.id]


def test_pages_have_no_gap_or_duplicate_while_new_ones_come(rt: Runtime) -> None:
    old = [made(rt, "shop", to=f"n{n}@example.com") for n in range(23)]
    first = page(rt, LogFilter(client="shop"), limit=10)
    new = [made(rt, "shop") for _ in range(5)]  # above the cursor: not in the pages after
    seen = ids(first)
    cursor = first.next_cursor
    while cursor is not None:
        found = page(rt, LogFilter(client="shop"), cursor=cursor, limit=10)
        seen += ids(found)
        new.append(made(rt, "shop"))
        cursor = found.next_cursor
    assert seen == old[::-1]
    everything = every_page(rt, LogFilter(), 4)
    assert everything == [*new[::-1], *old[::-1]]


def test_a_rare_status_is_found_past_the_first_round(rt: Runtime) -> None:
    failed = made(rt, "shop")
    rt.store.claim(failed, lease=30, max_attempts=3)
    rt.store.settle(failed, "failed", provider="smtp", error="550")
    for _ in range(300):
        made(rt, "shop")
    assert every_page(rt, LogFilter(status="failed"), 5) == [failed]


def test_entries_go_with_their_records(rt: Runtime) -> None:
    gone, kept_ = made(rt), made(rt)
    rt.redis.delete(record_key(gone))  # as it expires
    assert ids(page(rt, LogFilter())) == [kept_]
    # Each list expires after its newest entry's records can: the retention, and its slack.
    for key in (*shard_lists("log"), *shard_lists("log:c:shop")):
        ttl = rt.redis.ttl(key)
        assert ttl == -2 or rt.store.ttl < ttl <= kept(rt.store.ttl)


@pytest.mark.parametrize(
    ("field", "wanted", "asked"),
    [
        ("cursor", LogFilter(), {"cursor": "abc"}),
        ("kind", LogFilter(kind="fax"), {}),
        ("limit", LogFilter(), {"limit": 0}),
    ],
)
def test_a_bad_cursor_kind_or_limit_is_refused_naming_it(
    rt: Runtime, field: str, wanted: LogFilter, asked: dict[str, Any]
) -> None:
    with pytest.raises(Refused) as refused:
        page(rt, wanted, **asked)
    assert refused.value.faults[0].field == (field,)


def test_a_timeline_tells_each_step_and_never_the_content(rt: Runtime) -> None:
    mail = made(rt, reference="r-1")
    for error in ("451 try later", None):
        claim = rt.store.claim(mail, lease=30, max_attempts=3)
        assert claim.status == "sending"
        if error:
            rt.store.settle(mail, "retrying", provider="smtp", error=error)
        else:
            rt.store.settle(mail, "sent", provider="smtp", provider_ref="<m1@example.com>")
    rt.store.receipt("smtp", "<m1@example.com>", "delivered")
    rt.store.note(mail, "callback", outcome="HTTP 503", detail="delivered; r=1800000000")
    steps = timeline(rt, mail)
    assert steps is not None
    assert [(s.what, s.provider, s.outcome, s.detail) for s in steps] == [
        ("accepted", None, None, None),
        ("queued", None, None, None),
        ("attempt", "smtp", "retrying: 451 try later", "attempt 1"),
        ("attempt", "smtp", "sent", "attempt 2"),
        ("receipt", "smtp", "delivered", None),
        ("callback", None, "HTTP 503", "delivered; next retry at 2027-01-15T08:00:00.000Z"),
    ]
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    assert timeline(rt, str(uuid.uuid4())) is None


@pytest.mark.parametrize("pad", ["", "x", "xy"])  # one of the three cuts inside a character
def test_a_reply_in_another_script_is_cut_between_characters(rt: Runtime, pad: str) -> None:
    """A timeline line is cut to 64 bytes. A mail server's reply in Chinese (3 bytes a character)
    cut inside a character left bytes no read could decode: the record (the API's status), the
    log's pages and the timeline all failed, for as long as the record was kept."""
    mail = made(rt)
    rt.store.claim(mail, lease=30, max_attempts=3)
    error = f"SMTP 550: {pad}用户不存在 mailbox unavailable"
    rt.store.settle(mail, "failed", provider="smtp", error=error)
    found = rt.store.get(mail)
    assert found is not None and found.status == "failed"
    assert ids(page(rt, LogFilter(status="failed"), limit=10)) == [mail]
    steps = timeline(rt, mail)
    assert steps is not None
    # The attempt's outcome (its claim, in the same millisecond, may sort after it).
    (outcome,) = [s.outcome for s in steps if s.outcome and s.outcome.startswith("failed: ")]
    assert f"failed: {error}".startswith(outcome) and outcome.startswith("failed: SMTP 550: ")
    last = int(rt.redis.hget(record_key(mail), "en") or 0) - 1  # the attempt's line, as kept
    raw = cast(str | None, rt.redis.hget(record_key(mail), f"e{last % 20}"))
    assert raw is not None and raw.endswith(outcome) and len(raw.encode()) <= 64


def test_a_cancelled_scheduled_one_s_timeline(rt: Runtime) -> None:
    later = made(rt, send_at=time.time() + 600)
    assert rt.store.cancel(later) == "scheduled"
    steps = timeline(rt, later)
    assert steps is not None
    assert [s.what for s in steps] == ["accepted", "scheduled", "cancelled"]
    assert steps[1].detail is not None and steps[1].detail.startswith("due ")


def test_notifications_that_end_unsent_are_listed_as_they_do(rt: Runtime) -> None:
    failed, undelivered, suppressed, spent, sent = (made(rt) for _ in range(5))
    rt.store.claim(failed, lease=30, max_attempts=3)
    rt.store.settle(failed, "failed", provider="smtp", error="550")
    rt.store.claim(suppressed, lease=30, max_attempts=3)
    rt.store.settle(suppressed, "suppressed", provider=None, error="suppressed")
    rt.store.claim(spent, lease=0, max_attempts=1)
    assert rt.store.claim(spent, lease=30, max_attempts=1).status == "failed"  # gave up
    for one in (undelivered, sent):
        rt.store.claim(one, lease=30, max_attempts=3)
        rt.store.settle(one, "sent", provider="smtp", provider_ref=f"<{one}>")
    rt.store.receipt("smtp", f"<{undelivered}>", "undelivered", error="unreachable")
    scan = rt.store.scan(shard_lists("log:f"), below=[None] * 16, since=0, want=9, budget=9)
    listed = [entry.id for entry in scan.entries]
    assert sorted(listed) == sorted([failed, suppressed, spent, undelivered])
    assert ids(page(rt, LogFilter(status="failed"))) == [spent, failed]  # as they failed
    assert ids(page(rt, LogFilter(status="undelivered", client="shop"))) == [undelivered]
    assert ids(page(rt, LogFilter(status="undelivered", client="blog"))) == []
    assert ids(page(rt, LogFilter(status="sent"))) == [sent]


def test_a_failed_one_is_in_the_time_range_it_was_accepted_in_not_the_one_it_failed_in(
    rt: Runtime,
) -> None:
    """The unsent statuses' lists go by the time each failed: the range was applied to that,
    where the log's range is of acceptance, as it is without a status."""
    failed = made(rt)
    accepted = time.time() - 600  # accepted ten minutes before it failed, after its retries
    rt.redis.hset(record_key(failed), "created_at", rfc3339(accepted))
    rt.store.claim(failed, lease=30, max_attempts=3)
    rt.store.settle(failed, "failed", provider="smtp", error="550")
    assert ids(page(rt, LogFilter(status="failed", until=accepted + 60))) == [failed]
    within = LogFilter(status="failed", since=accepted - 60, until=accepted + 60)
    assert ids(page(rt, within)) == [failed]
    assert ids(page(rt, LogFilter(status="failed", since=accepted + 60))) == []


def test_a_status_read_from_the_records_is_looked_for_a_bounded_number_at_a_time(
    rt: Runtime,
) -> None:
    sent = made(rt, "shop")
    rt.store.claim(sent, lease=30, max_attempts=3)
    rt.store.settle(sent, "sent", provider="smtp")
    for _ in range(3 * MAX_LOOKED):
        made(rt, "shop")
    first = page(rt, LogFilter(status="sent"))
    assert first.rows == [] and first.next_cursor is not None  # short: looked at its share
    assert every_page(rt, LogFilter(status="sent"), 50) == [sent]

"""Each Lua script of the stores, run alone against a real Redis: what it answers and writes, its
header (every KEYS and ARGV it reads is declared), and that each step's keys share one hash slot
(run under :class:`~tests.support.harness.keyslots.SlotWatch`, which also sees the keys its Lua
reaches without declaring them, as the batch counts do).

The stores' own tests drive the same scripts through their methods; these pin the scripts
themselves, so a change to one shows here first, by name.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, TypeVar, cast

import pytest
import redis
from redis.typing import EncodableT, FieldT

from notifier.stores import latency
from notifier.stores.batch_counts import DONE_MEMBER, FAN_OUT_MEMBER, OPEN, open_key, scheduled_key
from notifier.stores.batches import batch_key, row_id
from notifier.stores.batches.keys import pending_key
from notifier.stores.captchas import Sender, pseudonym
from notifier.stores.notifications import metrics_key, payload_key, record_key
from notifier.stores.notifications.keys import SENDS_KEPT, dispatched_at_keys, sends_key
from notifier.stores.notifications.log import bucket_key, log_keys, tag, tags_of
from notifier.stores.scripts import LIBRARY, ROOT, by_sha, names, source
from notifier.stores.slots import SHARDS, in_shard, shard_key
from tests.support.harness.keyslots import SlotWatch
from tests.support.peers.redis_server import RedisServer

NOW = "2026-12-03T12:00:00Z"
CALLBACKS = "callbacks"  # a lane's list: the broker's, not the state's (see test_key_slots.py)
NID = "a1b2c3d4-0000-4000-8000-000000000001"  # shard a
NAMES = b"k" * 32  # keys the pseudonyms in key names
TESTED: set[str] = set()
F = TypeVar("F", bound=Callable[..., None])


def of(name: str) -> Callable[[F], F]:
    """Marks a test as the one of script ``name``: every script must have one."""
    TESTED.add(name)
    return lambda test: test


Run = Callable[..., Any]


@pytest.fixture
def r(redis_server: RedisServer) -> redis.Redis:
    client = redis.Redis.from_url(redis_server.url(2), decode_responses=True)
    client.flushdb()
    return client


@pytest.fixture
def run(r: redis.Redis, redis_server: RedisServer) -> Iterator[Run]:
    """Run a script as Redis runs it; fail if Cluster would refuse it (keys of two slots)."""
    ran: list[str] = []
    shas = by_sha()

    def call(name: str, keys: list[str], args: list[Any], *, cross_slot: bool = False) -> Any:
        script = r.register_script(source(name))
        with SlotWatch(
            redis_server.url(2), ignore=lambda key: key == CALLBACKS, names=shas
        ) as seen:
            answer = script(keys=keys, args=args)
        if not cross_slot:
            assert seen.violations == [], seen.violations
        ran.append(name)
        return answer

    yield call
    assert ran, "the test ran no script"


def record(r: redis.Redis, nid: str = NID, **fields: EncodableT) -> None:
    values: dict[FieldT, EncodableT] = {
        "id": nid, "client": "shop", "kind": "mail", "status": "queued", "attempts": "0",
    }  # fmt: skip
    values.update(fields)
    r.hset(record_key(nid), mapping=values)
    r.set(payload_key(nid), json.dumps({"to": ["ada@example.com"]}))


# -- the files themselves


def header_and_body(path: str) -> tuple[str, str]:
    lines = ROOT.joinpath(*path.split("/")).read_text(encoding="utf-8").splitlines()
    n = next(i for i, line in enumerate(lines) if not line.startswith("--"))
    return "\n".join(lines[:n]), "\n".join(lines[n:])


def declared(header: str, table: str) -> tuple[set[int], int | None]:
    """The indexes the header names one by one, and where a ``[n..]`` range starts."""
    one = {int(n) for n in re.findall(rf"^-- {table}\[(\d+)\] ", header, re.MULTILINE)}
    ranges = [int(n) for n in re.findall(rf"^-- {table}\[(\d+)\.\.\] ", header, re.MULTILINE)]
    return one, min(ranges) if ranges else None


@pytest.mark.parametrize("name", names())
def test_a_scripts_header_declares_every_key_and_argument_it_reads(name: str) -> None:
    header, body = header_and_body(f"{name}.lua")
    assert re.search(r"^-- Returns", header, re.MULTILINE), f"{name}: no 'Returns' line"
    for table in ("KEYS", "ARGV"):
        one, from_ = declared(header, table)
        used = {int(n) for n in re.findall(rf"\b{table}\[(\d+)\]", body)}
        undeclared = {n for n in used - one if from_ is None or n < from_}
        assert not undeclared, f"{name}: {table} {sorted(undeclared)} not in its header"
        assert one <= used or from_ is not None, f"{name}: {table} {sorted(one - used)} unused"
        assert one == set(range(1, len(one) + 1)), f"{name}: {table} not numbered 1, 2, …"


@pytest.mark.parametrize(
    "library", sorted(p.name for p in ROOT.joinpath(LIBRARY).iterdir() if p.name.endswith(".lua"))
)
def test_a_library_reads_no_keys_or_arguments_of_its_own(library: str) -> None:
    """A library's functions take what they use: the script that includes it declares it."""
    _, body = header_and_body(f"{LIBRARY}/{library}")
    assert not re.search(r"\b(KEYS|ARGV)\[", body)


def test_includes_are_replaced_once_each_however_many_name_them() -> None:
    claim = source("notifications/claim")  # batch_counts includes shard; claim observe too
    assert "--#include" not in claim
    assert claim.count("local function shard(") == 1
    assert claim.count("local function observe(") == 1
    assert all("--#include" not in source(name) for name in names())


def test_every_script_has_its_test_here() -> None:
    assert set(names()) == TESTED


def test_the_scripts_shard_rule_is_the_python_one(r: redis.Redis) -> None:
    ids = ["a1", "F0", "0", "", "z9", "9" + NID[1:], "-x"]
    library = ROOT.joinpath(LIBRARY, "shard.lua").read_text(encoding="utf-8")
    found = r.eval(
        library + "\nlocal out = {}\nfor i, id in ipairs(ARGV) do out[i] = in_shard(id, 'n') end\n"
        "return out",
        0,
        *ids,
    )
    assert found == [in_shard(i, "n") for i in ids]
    assert f"'{SHARDS}'" in library


def test_the_scripts_histogram_buckets_are_the_python_ones() -> None:
    library = ROOT.joinpath(LIBRARY, "observe.lua").read_text(encoding="utf-8")
    pairs = re.findall(r"\{([0-9.]+), '([0-9.]+)'\}", library)
    assert [float(bound) for bound, _ in pairs] == list(latency.BUCKETS)
    assert [le for _, le in pairs] == [repr(b) for b in latency.BUCKETS]  # prometheus_client's


# -- notifications


@of("notifications/claim")
def test_claim_takes_a_queued_record_once_and_counts_its_wait(r: redis.Redis, run: Run) -> None:
    record(r, queued_at=repr(time.time() - 0.3))
    keys = [record_key(NID), payload_key(NID), metrics_key(NID)]
    now = time.time()
    status, attempt, wait, payload, unrecorded = run(
        "notifications/claim", keys, [NOW, now, 30, 5, "claim-1", "mail"]
    )
    assert (status, attempt, wait, unrecorded) == ("sending", 1, "0", 0)
    assert json.loads(payload) == {"to": ["ada@example.com"]}
    assert r.hget(record_key(NID), "lane") == "mail"
    assert float(r.hget(record_key(NID), "lease_until") or 0) == pytest.approx(now + 30, abs=0.01)
    assert r.zscore(open_key(NID), NID) is not None
    counters = r.hgetall(metrics_key(NID))
    assert counters["attempts:mail:live"] == "1"
    assert counters["hist:queue_wait:mail:mail:0.5"] == "1"  # 0.3 s falls in (0.25, 0.5]
    # Made again by the same claim: the same answer, not a second attempt.
    assert run("notifications/claim", keys, [NOW, now, 30, 5, "claim-1", "mail"])[:2] == [
        "sending",
        1,
    ]
    # Another claim while the lease holds: busy, with the seconds it has left.
    busy = run("notifications/claim", keys, [NOW, now + 10, 30, 5, "claim-2", "mail"])
    assert busy[0] == "busy" and float(busy[2]) == pytest.approx(20, abs=0.01)
    # Past the lease: taken over, the attempt before counted as one whose outcome never came
    # (it may have sent it), in the answer and again when the same claim is made again.
    taken = run("notifications/claim", keys, [NOW, now + 31, 30, 5, "claim-3", "mail"])
    assert (taken[:3], taken[4]) == (["sending", 2, "0"], 1)
    assert run("notifications/claim", keys, [NOW, now + 31, 30, 5, "claim-3", "mail"])[4] == 1
    # Past that lease and past the most attempts: failed, not looped on, and counted in its
    # minute's failures as a provider's final failure is (the console's lanes and clients).
    minute = sends_key(NID, now + 62)
    gave_up = run("notifications/claim", [*keys, minute], [NOW, now + 62, 30, 2, "claim-4", ""])
    assert gave_up[:2] == ["failed", 2]
    assert r.hgetall(minute) == {"lane:mail:failed": "1", "client:shop:mail:failed": "1"}
    assert r.exists(payload_key(NID)) == 0
    assert r.zscore(open_key(NID), NID) is None


@of("notifications/settle")
def test_settle_records_an_outcome_once_and_moves_its_batch(r: redis.Redis, run: Run) -> None:
    batch = "a0000000-0000-8000-8000-00000000000b"
    nid = row_id(batch, 0)
    r.hset(batch_key(batch), mapping={"total": 1, "final": 0, "c:sending": 1, "ttl": 60,
                                      "callback": "1"})  # fmt: skip
    record(r, nid, status="sending", batch=batch, lane="mail", queued_at=repr(time.time() - 1.5),
           claim="claim-1")  # fmt: skip
    now = time.time()
    keys = [record_key(nid), payload_key(nid), metrics_key(nid), sends_key(nid, now), CALLBACKS]
    args = ["sent", "smtp", "", NOW, 60, "1", "0", "ref-1", "callback message", " shop ",
            "claim-1", now, 3]  # fmt: skip
    assert run("notifications/settle", keys, args) == [1, 1, 0]
    # Counted in its minute's sends, under its lane, for an hour (the console's chart).
    assert r.hgetall(sends_key(nid, now)) == {"lane:mail:sent": "1", "client:shop:mail:sent": "1"}
    assert 3600 < r.ttl(sends_key(nid, now)) <= SENDS_KEPT
    assert r.hget(record_key(nid), "status") == "sent"
    assert r.hmget(record_key(nid), "provider_ref", "recipients") == ["ref-1", "3"]
    assert r.exists(payload_key(nid)) == 0
    assert r.lrange(CALLBACKS, 0, -1) == ["callback message"]
    counters = r.hgetall(metrics_key(nid))
    assert counters["final:mail:sent:live"] == "1"
    assert counters["hist:delivery:mail:mail:2.0"] == "1"  # 1.5 s: (1, 2]
    # The batch's last row is final: the batch is done, its callback due on its schedule.
    assert r.hget(batch_key(batch), "c:sent") == "1"
    assert r.hget(batch_key(batch), "done_at") == NOW
    assert r.zscore(scheduled_key(batch), DONE_MEMBER + batch) is not None
    assert r.zscore(open_key(nid), nid) is None
    # The same outcome under the same claim, made again: nothing moves, nothing counts twice.
    assert run("notifications/settle", keys, args) == [0, 0, 0]
    assert r.hget(metrics_key(nid), "final:mail:sent:live") == "1"


@of("notifications/settle")
def test_settle_leaves_alone_the_outcome_of_an_attempt_that_outlived_its_lease(
    r: redis.Redis, run: Run
) -> None:
    """A worker that stalled past its lease (claim-1) while another took the row over (claim-2)
    and sent it: claim-1's late outcome neither moves the record back nor counts the row
    final again, which ended its batch while the other row still waited."""
    batch = "a0000000-0000-8000-8000-00000000000c"
    first, second = row_id(batch, 0), row_id(batch, 1)
    r.hset(batch_key(batch), mapping={"total": 2, "final": 0, "c:sending": 1, "c:queued": 1,
                                      "ttl": 60})  # fmt: skip
    record(r, first, status="sending", batch=batch, lane="mail", claim="claim-2")
    record(r, second, status="queued", batch=batch, lane="mail")
    now = time.time()
    keys = [record_key(first), payload_key(first), metrics_key(first), sends_key(first, now)]

    def settle(status: str, final: str, claim: str) -> list[int]:
        args = [status, "smtp", "" if status == "sent" else "timed out", NOW, 60, final, "0",
                "", "", " ", claim, now, ""]  # fmt: skip
        answer: list[int] = run("notifications/settle", keys, args)
        return answer

    assert settle("retrying", "0", "claim-1") == [0, 0, 0]  # taken over: claim-2's to settle
    assert r.hget(record_key(first), "status") == "sending"
    assert settle("sent", "1", "claim-2") == [1, 0, 0]
    assert settle("retrying", "0", "claim-1") == [0, 0, 0]  # final already
    assert settle("failed", "1", "claim-1") == [0, 0, 0]
    assert r.hget(record_key(first), "status") == "sent"
    assert r.hmget(batch_key(batch), "final", "done_at") == ["1", None]
    assert r.hget(metrics_key(first), "final:mail:sent:live") == "1"
    # The other row's last attempt stalled and a claim gave up on it (failed, its claim still
    # claim-3): the provider took it after all, and its 'sent' is recorded, counted once.
    r.hset(record_key(second), mapping={"status": "failed", "claim": "claim-3"})
    r.hset(batch_key(batch), mapping={"c:failed": 1, "final": 2})
    keys[:] = [record_key(second), payload_key(second), metrics_key(second), sends_key(second, now)]
    assert settle("retrying", "0", "claim-3") == [0, 0, 0]  # never back
    assert settle("sent", "1", "claim-3")[0] == 1
    assert r.hget(record_key(second), "status") == "sent"
    assert r.hmget(batch_key(batch), "final", "c:failed", "c:sent") == ["2", "0", "2"]
    assert r.hget(metrics_key(second), "final:mail:sent:live") == "1"  # the first row's


@of("notifications/index_ref")
def test_index_ref_names_the_notification_for_the_refs_retention(r: redis.Redis, run: Run) -> None:
    key = "notifier:ref:twilio:SM1"
    r.set(key, "an older one")
    assert run("notifications/index_ref", [key], [NID, 60]) == 1
    assert r.get(key) == NID and 0 < r.ttl(key) <= 60


def test_a_full_redis_records_an_outcome_and_its_ref_all_the_same(fillable: RedisServer) -> None:
    """At maxmemory (noeviction) Redis refuses what needs memory, but not the outcome of a send
    the provider took: refused, it would be sent again (issue 35)."""
    r = redis.Redis.from_url(fillable.url(), decode_responses=True)
    r.flushdb()
    record(r, status="sending", lane="mail", queued_at=repr(time.time() - 1), claim="claim-1")
    keys = [record_key(NID), payload_key(NID), metrics_key(NID), sends_key(NID, 0), CALLBACKS]
    args: list[EncodableT] = ["sent", "smtp", "", NOW, 60, "1", "0", "ref-1",
                              "callback message", " shop ", "claim-1", time.time(), ""]  # fmt: skip
    settle = r.register_script(source("notifications/settle"))
    index_ref = r.register_script(source("notifications/index_ref"))
    fillable.fill()
    try:
        with pytest.raises(redis.OutOfMemoryError):
            r.set("anything", "new")  # full indeed
        assert settle(keys=keys, args=args) == [1, 1, 0]
        assert index_ref(keys=["notifier:ref:smtp:ref-1"], args=[NID, 60]) == 1
    finally:
        fillable.free()
    assert r.hget(record_key(NID), "status") == "sent"
    assert r.exists(payload_key(NID)) == 0
    assert r.lrange(CALLBACKS, 0, -1) == ["callback message"]
    assert r.hget(metrics_key(NID), "final:mail:sent:live") == "1"
    assert r.get("notifier:ref:smtp:ref-1") == NID


@of("notifications/receipt")
def test_a_receipt_moves_a_sent_record_once(r: redis.Redis, run: Run) -> None:
    record(r, kind="sms_captcha", status="sent")
    keys = [record_key(NID), metrics_key(NID)]
    args = ["delivered", "", NOW, 60, "twilio", "", " other "]
    assert run("notifications/receipt", keys, args) == ["moved", 0]  # shop wants no callbacks
    assert r.hget(record_key(NID), "status") == "delivered"
    assert r.hget(metrics_key(NID), "receipts:twilio:delivered") == "1"
    assert r.hget(metrics_key(NID), "final:sms_captcha:delivered:live") == "1"
    assert run("notifications/receipt", keys, ["undelivered", "", NOW, 60, "twilio", "", ""]) == [
        "delivered",
        0,
    ]
    assert r.hget(record_key(NID), "status") == "delivered"


@of("notifications/soft_bounce")
def test_a_soft_bounce_is_noted_on_a_record_that_is_there(r: redis.Redis, run: Run) -> None:
    record(r, status="sent")
    r.expire(record_key(NID), 60)
    noted = json.dumps({"status": "4.2.2", "diagnostic": "452 Mailbox full", "at": NOW})
    assert run("notifications/soft_bounce", [record_key(NID)], [noted]) == 1
    assert r.hget(record_key(NID), "soft_bounce") == noted
    assert r.hget(record_key(NID), "status") == "sent" and r.ttl(record_key(NID)) > 0
    r.delete(record_key(NID))
    assert run("notifications/soft_bounce", [record_key(NID)], [noted]) == 0
    assert not r.exists(record_key(NID))  # an expired record is not made again


@of("notifications/discard")
def test_discard_forgets_a_queued_record_and_keeps_one_a_worker_has(
    r: redis.Redis, run: Run
) -> None:
    keys = [record_key(NID), payload_key(NID), scheduled_key(NID), open_key(NID)]
    record(r, status="sending", claim="c1")  # its publish failed late: a worker claimed it
    r.zadd(open_key(NID), {NID: 1})
    assert run("notifications/discard", keys, [NID]) == 0
    assert r.hget(record_key(NID), "status") == "sending" and r.exists(payload_key(NID))
    record(r, status="queued")
    assert run("notifications/discard", keys, [NID]) == 1
    assert not r.exists(record_key(NID), payload_key(NID)) and r.zscore(open_key(NID), NID) is None
    assert run("notifications/discard", keys, [NID]) == 1  # gone already: nothing to keep


@of("batches/discard")
def test_discard_forgets_a_batch_not_fanned_out_and_keeps_one_that_is(
    r: redis.Redis, run: Run
) -> None:
    batch = "b1b2c3d4-0000-8000-8000-000000000001"
    keys = [batch_key(batch), in_shard(batch, f"bc:{batch}"), in_shard(batch, f"br:{batch}"),
            scheduled_key(batch), in_shard(batch, "batches")]  # fmt: skip
    args = [batch, FAN_OUT_MEMBER + batch]
    r.hset(batch_key(batch), mapping={"total": 3, "fanned": 2})
    assert run("batches/discard", keys, args) == 0 and r.exists(batch_key(batch))
    r.hset(batch_key(batch), "fanned", 0)
    r.zadd(keys[4], {batch: 1})
    assert run("batches/discard", keys, args) == 1
    assert not r.exists(batch_key(batch)) and r.zscore(keys[4], batch) is None


@of("notifications/mail_event")
def test_a_mail_event_moves_a_sent_mail_once_a_recipient_at_a_time(
    r: redis.Redis, run: Run
) -> None:
    record(r, status="sent", recipients="2")
    keys = [record_key(NID), metrics_key(NID)]

    def event(kind: str, token: str, note: str = "", tells: str = "") -> list[object]:
        args = [kind, token, note, NOW, 60, "ses", "", " other ", tells]
        answer: list[object] = run("notifications/mail_event", keys, args)
        return answer

    # One of two recipients bounced: the mail is not undelivered yet, its first bounce counted.
    assert event("bounced", "t1", "bounced: 5.1.1", "undelivered") == ["noted", 0, 1, "shop"]
    assert event("bounced", "t1", "bounced: 5.1.1", "undelivered") == ["duplicate", 0, 0, "shop"]
    assert r.hget(record_key(NID), "status") == "sent"
    # The other was dropped: every recipient failed for good.
    assert event("dropped", "t2", "dropped: Invalid", "undelivered") == ["moved", 0, 0, "shop"]
    assert r.hmget(record_key(NID), "status", "error") == ["undelivered", "dropped: Invalid"]
    assert r.hget(metrics_key(NID), "receipts:ses:undelivered") == "1"
    assert r.hget(metrics_key(NID), "final:mail:undelivered:live") == "1"
    assert r.hget(metrics_key(NID), "mail_events:ses:bounced") == "1"
    # A delivery of a recipient that bounced moves nothing back.
    assert event("delivered", "t1", tells="delivered") == ["duplicate", 0, 0, "shop"]
    assert r.hget(record_key(NID), "status") == "undelivered"


@of("notifications/mail_event")
def test_a_soft_bounce_keeps_the_latest_and_a_complaint_the_first(r: redis.Redis, run: Run) -> None:
    record(r, status="delivered", client="shop")
    keys = [record_key(NID), metrics_key(NID), CALLBACKS]

    def soft(at: str) -> str:
        return json.dumps({"status": "4.2.2", "diagnostic": "full", "at": at})

    late, early = soft("2026-12-03T12:00:05.000Z"), soft("2026-12-03T12:00:01.000Z")
    args = ["soft", "t1", late, NOW, 60, "ses", "", " shop ", ""]
    assert run("notifications/mail_event", keys[:2], args) == ["noted", 0, 0, "shop"]
    args[2] = early  # older than the one noted: kept as it was
    assert run("notifications/mail_event", keys[:2], args) == ["duplicate", 0, 0, "shop"]
    assert r.hget(record_key(NID), "soft_bounce") == late
    complaint = json.dumps({"type": "abuse", "at": NOW})
    args = ["complained", "t1", complaint, NOW, 60, "ses", "message", " shop ", "sent"]
    # Its callback was made for another status than the record's: made again.
    assert run("notifications/mail_event", keys, args) == ["changed", 0, 0, "shop"]
    args[8] = "delivered"
    assert run("notifications/mail_event", keys, args) == ["noted", 1, 1, "shop"]
    assert r.lrange(CALLBACKS, 0, -1) == ["message"]
    args[1] = "t2"  # another recipient's: noted, no second callback, the first complaint kept
    assert run("notifications/mail_event", keys, [*args[:2], "{}", *args[3:]]) == [
        "noted", 0, 0, "shop",
    ]  # fmt: skip
    assert r.hget(record_key(NID), "complaint") == complaint
    assert run("notifications/mail_event", keys, args) == ["duplicate", 0, 0, "shop"]


@of("notifications/mail_event")
def test_a_mail_event_waits_for_the_send_and_refuses_only_a_sent_mail(
    r: redis.Redis, run: Run
) -> None:
    keys = [record_key(NID), metrics_key(NID)]
    args = ["failed", "", "refused by ses: Bad content", NOW, 60, "ses", "", "", ""]
    assert run("notifications/mail_event", keys, args) == ["missing", 0, 0, ""]
    record(r, status="sending")
    assert run("notifications/mail_event", keys, args) == ["sending", 0, 0, ""]
    r.hset(record_key(NID), "status", "sent")
    assert run("notifications/mail_event", keys, args)[0] == "moved"
    assert run("notifications/mail_event", keys, args)[0] == "duplicate"
    assert r.hget(record_key(NID), "error") == "refused by ses: Bad content"


@of("guard/note")
def test_note_warns_once_then_pauses_over_the_minimum_volume(r: redis.Redis, run: Run) -> None:
    guard = "notifier:guard:{shop}"
    now, before = f"{guard}:10", f"{guard}:9"
    keys = [guard, now, before]
    r.hset(before, "sent", 35)
    r.hset(now, "sent", 5)

    def note(what: str = "bounced", kind: str = "bounce", rates: str = "0.05 0.1") -> list[object]:
        warn, pause = rates.split()
        answer: list[object] = run("guard/note", keys, [what, 90000, 20, warn, pause, NOW, kind])
        return answer

    assert note() == ["ok", 0, 1, 40]  # 2.5%
    assert note() == ["warn", 1, 2, 40]  # 5%: at the warning rate
    assert note() == ["warn", 0, 3, 40]  # warned already
    # 1 of 40 complained, past 0.5%: paused.
    assert note("complained", "complaint", "0.001 0.005") == ["pause", 1, 1, 40]
    assert json.loads(r.hget(guard, "paused") or "") == {
        "kind": "complaint", "count": 1, "volume": 40, "at": NOW,
    }  # fmt: skip
    assert note() == ["paused", 0, 4, 40]  # counted still, paused already
    assert r.ttl(now) > 0 and r.hget(now, "bounced") == "4"
    r.delete(guard)
    r.hset(now, "sent", 1000)
    assert note() == ["ok", 0, 5, 1035]
    r.delete(now, before)
    assert note() == ["ok", 0, 1, 0]  # nothing sent in the window: no verdict


@of("guard/note")
def test_note_warns_and_pauses_at_exactly_their_rates(r: redis.Redis, run: Run) -> None:
    """42 of 600 is 7%, where 0.07 * 600 is a hair over 42 in floating point: each rate at 0.07
    once went unmet there."""
    guard = "notifier:guard:{shop}"
    for rates, verdict in (("0.07 0.5", "warn"), ("0.05 0.07", "pause")):
        r.delete(guard)
        r.hset(f"{guard}:10", mapping={"sent": 600, "bounced": 41})
        warn, pause = rates.split()
        answer = run("guard/note", [guard, f"{guard}:10"],
                     ["bounced", 90000, 20, warn, pause, NOW, "bounce"])  # fmt: skip
        assert answer == [verdict, 1, 42, 600]


@of("notifications/cancel")
def test_cancel_takes_only_the_statuses_it_is_given(r: redis.Redis, run: Run) -> None:
    record(r, status="scheduled")
    r.zadd(scheduled_key(NID), {NID: time.time() + 60})
    keys = [record_key(NID), payload_key(NID), scheduled_key(NID), metrics_key(NID)]
    assert run("notifications/cancel", keys, [NID, NOW, "", " shop ", " queued "]) == [
        "scheduled",
        0,
    ]
    assert r.hget(record_key(NID), "status") == "scheduled"
    assert run("notifications/cancel", keys, [NID, NOW, "", " shop ", " scheduled "]) == [
        "scheduled",
        1,
    ]
    assert r.hget(record_key(NID), "status") == "cancelled"
    assert r.zscore(scheduled_key(NID), NID) is None
    assert r.exists(payload_key(NID)) == 0
    assert r.hget(metrics_key(NID), "final:mail:cancelled:live") == "1"
    gone = ["a-gone", NOW, "", "", " scheduled "]
    assert run("notifications/cancel", [record_key("a-gone"), *keys[1:]], gone) == [None, 0]


@of("notifications/lease_due")
def test_lease_due_leases_what_is_due_and_stamps_the_run(r: redis.Redis, run: Run) -> None:
    schedule = shard_key("a", "scheduled")
    r.zadd(schedule, {"a-due": 100, "batch:a-due": 150, "a-later": 300})
    keys = [schedule, dispatched_at_keys()[SHARDS.index("a")]]
    assert sorted(run("notifications/lease_due", keys, [200, 260, 10])) == ["a-due", "batch:a-due"]
    assert r.zscore(schedule, "a-due") == 260  # due again when the lease ends, unless dispatched
    assert r.zscore(schedule, "a-later") == 300
    assert r.get(keys[1]) == "200"
    assert run("notifications/lease_due", keys, [200, 260, 10]) == []  # leased: no one else's


@of("notifications/dispatched")
def test_dispatched_queues_a_scheduled_record_from_now(r: redis.Redis, run: Run) -> None:
    record(r, status="scheduled")
    r.zadd(scheduled_key(NID), {NID: 100})
    keys = [record_key(NID), scheduled_key(NID), open_key(NID)]
    run("notifications/dispatched", keys, [NID, NOW, NID, 1234.5])
    assert r.hget(record_key(NID), "status") == "queued"
    assert r.hget(record_key(NID), "queued_at") == "1234.5"
    assert r.zscore(scheduled_key(NID), NID) is None
    assert r.zscore(open_key(NID), NID) is not None
    assert open_key(NID) == shard_key("a", OPEN)


# -- batches


@of("batches/take_pending")
def test_take_pending_counts_a_batch_once_within_the_limit(r: redis.Redis, run: Run) -> None:
    key = [pending_key("shop")]
    assert run("batches/take_pending", key, ["b1", 6, 10, 60]) == 1
    assert run("batches/take_pending", key, ["b1", 6, 10, 60]) == 1  # a retried call: once
    assert run("batches/take_pending", key, ["b2", 6, 10, 60]) == -1
    assert run("batches/take_pending", key, ["b2", 6, 10, 60, "b1"]) == 1  # b1 was found done
    assert set(r.hkeys(key[0])) == {"b2"}


@of("batches/fan_out")
def test_fan_out_makes_a_chunk_once_in_the_batchs_shard(r: redis.Redis, run: Run) -> None:
    batch = "c0000000-0000-8000-8000-00000000000b"
    r.hset(batch_key(batch), mapping={"fanned": 0, "state": "scheduled", "c:scheduled": 2})
    rows = [row_id(batch, i) for i in range(2)]
    keys = [batch_key(batch), CALLBACKS]
    for nid in rows:
        keys += [record_key(nid), payload_key(nid)]
    common = json.dumps(["client", "shop", "status", "queued", "batch", batch])
    args: list[Any] = [0, 2, 60, NOW, common, "shop", "mail", 120]
    # The second row's record has a field of its own (an SMS's segments); the first, none.
    own = [[], ["segments", "2"]]
    for i, nid in enumerate(rows):
        payload = json.dumps({"to": [f"{i}@example.com"]})
        tags = tags_of(b"k", [f"{i}@example.com"], f"ref-{i}")
        args += [nid, f"ref-{i}", payload, f"message {i}", json.dumps(own[i]), tags]
    assert run("batches/fan_out", keys, args) == 1
    assert r.hgetall(batch_key(batch)) == {
        "fanned": "2", "state": "queued", "c:scheduled": "0", "c:queued": "2", "updated_at": NOW,
    }  # fmt: skip
    for i, nid in enumerate(rows):
        assert nid[0] == "c"  # the batch's shard
        assert r.hgetall(record_key(nid)) == {
            "id": nid, "reference": f"ref-{i}", "client": "shop", "status": "queued",
            "batch": batch, **dict(zip(own[i][::2], own[i][1::2], strict=True)),
        }  # fmt: skip
        assert r.zscore(open_key(nid), nid) is not None
    assert sorted(r.lrange(CALLBACKS, 0, -1)) == ["message 0", "message 1"]
    # In the message log of the batch's shard: the shard's, the client's, each tag's bucket.
    assert ids_in(run, in_shard(batch, "log")) == rows[::-1]
    assert ids_in(run, in_shard(batch, "log:c:shop")) == rows[::-1]
    for i, nid in enumerate(rows):
        for tagged in (tag(b"k", "to", f"{i}@example.com"), tag(b"k", "ref", f"ref-{i}")):
            assert ids_in(run, bucket_key(batch, tagged), tagged) == [nid]
    assert run("batches/fan_out", keys, args) == 0  # made already: the cursor moved
    r.hset(batch_key(batch), "cancelled", "1")
    assert run("batches/fan_out", keys, [2, 4, *args[2:]]) == -1


@of("batches/cancel")
def test_cancel_counts_the_rows_never_made_as_cancelled(r: redis.Redis, run: Run) -> None:
    batch = "d0000000-0000-8000-8000-00000000000b"
    r.hset(batch_key(batch), mapping={"client": "shop", "total": 3, "fanned": 1, "final": 0,
                                      "state": "queued", "c:queued": 3, "ttl": 60})  # fmt: skip
    r.zadd(scheduled_key(batch), {FAN_OUT_MEMBER + batch: 100})
    keys = [batch_key(batch), scheduled_key(batch)]
    assert run("batches/cancel", keys, [batch, NOW]) == ["cancelled", 1, "shop"]
    fields = r.hgetall(batch_key(batch))
    assert (fields["c:queued"], fields["c:cancelled"], fields["final"]) == ("1", "2", "2")
    assert r.zscore(scheduled_key(batch), FAN_OUT_MEMBER + batch) is None
    assert run("batches/cancel", keys, [batch, NOW]) == ["cancelled", 1, "shop"]  # once
    assert r.hget(batch_key(batch), "c:cancelled") == "2"
    r.hset(batch_key(batch), mapping={"cancelled": "0", "done_at": NOW})
    assert run("batches/cancel", keys, [batch, NOW]) == ["done", 0, "shop"]
    gone = "d0000000-0000-8000-8000-0000000000ff"
    assert run("batches/cancel", [batch_key(gone), keys[1]], [gone, NOW]) == ["missing", 0, ""]


@of("batches/published")
def test_published_marks_a_batch_and_never_makes_one_again(r: redis.Redis, run: Run) -> None:
    there, gone = "e0000000-0000-8000-8000-000000000001", "e0000000-0000-8000-8000-000000000002"
    r.hset(batch_key(there), "published", 0)
    run("batches/published", [batch_key(there)], [500])
    run("batches/published", [batch_key(gone)], [500])
    assert r.hget(batch_key(there), "published") == "500"
    assert r.exists(batch_key(gone)) == 0


# -- the message log


def ids_in(run: Run, key: str, tagged: bytes = b"", kinds: str = "") -> list[str]:
    """The ids a list of the message log holds, newest first."""
    _, _, *found = run("notifications/log_page", [key], ["", 0, 100, 1000, tagged, kinds])
    return [str(i) for i in found[2::3]]


def entry(at: int, rest: bytes = b"m" + bytes(16)) -> bytes:
    return at.to_bytes(7, "big") + rest


@of("notifications/logged")
def test_logged_indexes_a_notification_newest_first_and_drops_the_old(
    r: redis.Redis, run: Run, redis_server: RedisServer
) -> None:
    raw = redis.Redis.from_url(redis_server.url(2))
    ids = [f"a{n}b2c3d4-0000-4000-8000-00000000000{n}" for n in range(3)]
    tags = tags_of(b"k", ["Ada@Example.com", "+447700900123"], "order-1")
    keys = log_keys(ids[0], "shop", tags)
    assert keys[:2] == [in_shard(ids[0], "log"), in_shard(ids[0], "log:c:shop")]
    raw.rpush(keys[0], entry(1))  # an entry older than any kept: dropped by the next
    for nid in ids:
        assert (
            run("notifications/logged", log_keys(nid, "shop", tags), [nid, "mail", tags, 600]) == 1
        )
    assert ids_in(run, keys[0]) == ids[::-1]
    assert ids_in(run, keys[1], kinds="mc") == ids[::-1]
    assert ids_in(run, keys[1], kinds="s") == []
    for i, key in enumerate(keys[2:]):
        assert ids_in(run, key, tags[8 * i : 8 * i + 8]) == ids[::-1]
        assert {len(e) for e in raw.lrange(key, 0, -1)} == {32}  # tag, time, kind, 16 bytes
    assert {len(e) for e in raw.lrange(keys[0], 0, -1)} == {24}
    assert 590 <= r.ttl(keys[0]) <= 600
    # Log times strictly rise in a list, however close together the notifications came.
    _, _, *found = run("notifications/log_page", [keys[0]], ["", 0, 10, 10, "", ""])
    times = found[0::3]
    assert times == sorted(times, reverse=True) and len(set(times)) == 3
    # An id that is no UUID is kept as it is, its kind's letter in upper case.
    other = log_keys("n1", "shop", b"")
    run("notifications/logged", other, ["n1", "sms", b"", 600])
    assert cast(bytes, raw.lindex(other[0], 0))[7:] == b"Sn1"
    assert ids_in(run, other[0], kinds="s") == ["n1"]


@of("notifications/log_page")
def test_log_page_reads_below_a_time_matching_a_tag_within_a_budget(
    r: redis.Redis, run: Run, redis_server: RedisServer
) -> None:
    raw = redis.Redis.from_url(redis_server.url(2))
    mine, other = b"\x00\x01mine--", b"\x00\x01else--"  # 8 bytes each
    key = bucket_key("a", mine)
    for at in range(1, 11):  # newest at the head: times 10 down to 1, every third one's 'other'
        raw.lpush(key, (other if at % 3 == 0 else mine) + entry(at, b"s" + uuid.UUID(int=at).bytes))

    def page(below: Any, since: int, want: int, budget: int, tagged: bytes) -> list[Any]:
        return list(run("notifications/log_page", [key], [below, since, want, budget, tagged, ""]))

    def found(*ats: int) -> list[Any]:
        return [v for at in ats for v in (at, "s", str(uuid.UUID(int=at)))]

    assert page("", 0, 3, 100, mine) == [0, 7, *found(10, 8, 7)]  # 9 is the other tag's
    assert page(7, 0, 2, 100, mine) == [0, 4, *found(5, 4)]  # below 7
    assert page(7, 3, 10, 100, mine) == [1, 3, *found(5, 4)]  # over at since
    assert page("", 0, 10, 4, other) == [0, 7, *found(9)]  # its budget: 4 looked at
    assert page("", 0, 10, 100, other) == [1, 1, *found(9, 6, 3)]  # the list's end
    assert page(1, 0, 10, 100, mine) == [1, 0]  # nothing below the last


@of("notifications/note")
def test_note_keeps_the_last_twenty_events_of_a_record_that_is_there(
    r: redis.Redis, run: Run
) -> None:
    record(r)
    for n in range(21):
        assert (
            run("notifications/note", [record_key(NID)], ["callback", "", f"d{n}", "x" * 80]) == 1
        )
    fields = cast(dict[str, str], r.hgetall(record_key(NID)))
    assert fields["en"] == "21"
    events = sorted(v for k, v in fields.items() if re.fullmatch(r"e\d+", k))
    assert len(events) == 20 and all(len(e) == 64 for e in events)
    assert fields["e0"].split("|")[1:4] == ["callback", "", "d20"]  # the first, written over
    gone = "a0000000-0000-4000-8000-0000000000ff"
    assert run("notifications/note", [record_key(gone)], ["callback", "", "", "HTTP 200"]) == 0
    assert r.exists(record_key(gone)) == 0


# -- captchas, idempotency, rate limits, suppressions


@of("captchas/take_recipient")
def test_take_recipient_holds_interval_limit_and_ceiling(r: redis.Redis, run: Run) -> None:
    def take(client: str, member: str, now: int, *, interval: int = 0) -> list[Any]:
        keys = Sender(client, "login", "+447700900123").recipient_keys(NAMES)
        args = [now, member, interval, 2, 86_400_000, 3, "phone_ceiling"]
        answer: list[Any] = run("captchas/take_recipient", keys, args)
        return answer

    assert take("a", "1", 1000, interval=60_000) == ["ok", 0]
    limit, wait = take("a", "2", 2000)  # the interval is a key's expiry: Redis's clock
    assert limit == "resend_interval" and 59_000 < wait <= 60_000
    assert take("b", "3", 2000) == ["ok", 0]  # another client's interval is its own
    assert take("b", "4", 3000) == ["ok", 0]
    assert take("b", "5", 4000) == ["daily_limit", 86_400_000 - 2000]  # b's oldest: 2000
    assert take("c", "6", 4000) == ["phone_ceiling", 86_400_000 - 3000]  # three for the phone
    # A day after the first send, it has left both windows.
    assert take("c", "7", 1000 + 86_400_000) == ["ok", 0]


@of("captchas/take_ip")
def test_take_ip_holds_a_clients_hourly_limit_and_a_ceiling_for_all(
    r: redis.Redis, run: Run
) -> None:
    def keys(client: str) -> list[str]:
        return Sender(client, "login", "+447700900123", client_ip="2001:db8::1").ip_keys(NAMES)

    # The /64 counts, named by its pseudonym (no end user's address in a key).
    named = pseudonym(NAMES, "2001:db8::/64", what="ip")
    assert keys("a") == [f"notifier:captcha:ip:{{{named}}}:a", f"notifier:captcha:ip:{{{named}}}"]
    assert keys("a") == Sender("a", "login", "+447700900123", client_ip="2001:db8::2").ip_keys(
        NAMES
    )
    hour = 3_600_000
    assert run("captchas/take_ip", keys("a"), [1000, "1", 1, 2, hour]) == ["ok", 0]
    assert run("captchas/take_ip", keys("a"), [2000, "2", 1, 2, hour]) == ["ip_limit", 3_599_000]
    assert run("captchas/take_ip", keys("b"), [3000, "3", 1, 2, hour]) == ["ok", 0]
    assert run("captchas/take_ip", keys("c"), [4000, "4", 1, 2, hour]) == ["ip_hourly_ceiling", 3_597_000]  # fmt: skip
    assert r.zcard(keys("c")[0]) == 0  # refused: nothing taken
    assert run("captchas/take_ip", keys("a"), [3_601_000, "5", 1, 2, hour]) == ["ok", 0]


@of("captchas/purpose_label")
def test_purpose_label_labels_the_first_purposes_and_counts_the_rest_as_other(
    r: redis.Redis, run: Run
) -> None:
    key = ["notifier:captcha_purposes:shop"]
    assert run("captchas/purpose_label", key, ["login", 2]) == "login"
    assert run("captchas/purpose_label", key, ["signup", 2]) == "signup"
    assert run("captchas/purpose_label", key, ["junk", 2]) == "other"
    assert run("captchas/purpose_label", key, ["login", 2]) == "login"  # labelled: kept
    assert r.smembers(key[0]) == {"login", "signup"}


# -- the console


@of("console/take_login")
def test_take_login_holds_a_names_and_an_addresss_sliding_windows(r: redis.Redis, run: Run) -> None:
    login = "notifier:console:login:{console}"
    name, other, address = f"{login}:name:n", f"{login}:name:m", f"{login}:address:a"
    window = 900_000

    def take(keys: list[str], now: int, member: str) -> Any:
        return run("console/take_login", keys, [now, member, 2, 3, window])

    assert take([name, address], 1000, "1") == ["ok", 0]
    assert take([name, address], 2000, "2") == ["ok", 0]
    assert take([name, address], 3000, "3") == ["name", window - 2000]  # its oldest: 1000
    assert take([other, address], 4000, "4") == ["ok", 0]
    assert take([other, address], 5000, "5") == ["address", window - 4000]
    assert r.zcard(other) == 1 and r.zcard(address) == 3  # refused: nothing taken
    # Sliding: a window after the first, one more may be tried, and no more.
    assert take([name, address], 1001 + window, "6") == ["ok", 0]
    assert take([name, address], 1002 + window, "7") == ["name", 1000 - 2]
    assert r.ttl(name) > 0 and r.ttl(address) > 0
    # A window that holds more than the limit (the limit lowered since): the wait is until
    # enough have left for one more, not until the oldest has.
    r.delete(name)
    r.zadd(name, {str(n): n * 1000 for n in range(1, 6)})  # 5 in it, the limit 2
    fresh = f"{login}:address:b"
    assert take([name, fresh], 6000, "8") == ["name", window + 4000 - 6000]  # the 4th: one left


@of("idempotency/reserve")
def test_reserve_answers_new_pending_conflict_and_done(r: redis.Redis, run: Run) -> None:
    slot = ["notifier:idem:shop:" + "0" * 64]
    assert run("idempotency/reserve", slot, ["fp", 30, ""]) == ["new"]
    assert 0 < r.ttl(slot[0]) <= 30
    assert run("idempotency/reserve", slot, ["fp", 30, ""]) == ["pending", "", "", ""]
    assert run("idempotency/reserve", slot, ["other", 30, ""]) == ["conflict"]
    # Noted (by idempotency/note) a second ago: the id, the status and the age in ms.
    noted_at = int(time.time() * 1000) - 1000
    r.hset(slot[0], mapping={"id": NID, "noted_status": "queued", "noted_at": noted_at})
    state, found, status, age = run("idempotency/reserve", slot, ["fp", 30, ""])
    assert (state, found, status) == ("pending", NID, "queued")
    assert 900 <= age <= 5000
    # Another id than the one noted frees nothing; the noted one whose record never came does.
    assert run("idempotency/reserve", slot, ["fp", 30, "other-id"])[:2] == ["pending", NID]
    r.expire(slot[0], 86_400)
    assert run("idempotency/reserve", slot, ["fp", 30, NID]) == ["new"]
    assert r.hgetall(slot[0]) == {"fingerprint": "fp", "state": "pending"}
    assert 0 < r.ttl(slot[0]) <= 30
    r.hset(slot[0], mapping={"state": "done", "status": 202, "body": "{}", "location": "/x"})
    assert run("idempotency/reserve", slot, ["fp", 30, ""]) == ["done", "202", "{}", "/x"]


@of("idempotency/note")
def test_note_keeps_the_id_in_its_own_pending_slot_only(r: redis.Redis, run: Run) -> None:
    slot = ["notifier:idem:shop:" + "1" * 64]
    assert run("idempotency/note", slot, ["fp", NID, "queued", 86_400]) == 0  # no slot
    assert not r.exists(slot[0])
    r.hset(slot[0], mapping={"fingerprint": "fp", "state": "pending"})
    r.expire(slot[0], 30)
    assert run("idempotency/note", slot, ["other", NID, "queued", 86_400]) == 0
    assert run("idempotency/note", slot, ["fp", NID, "scheduled", 86_400]) == 1
    found = r.hgetall(slot[0])
    assert (found["id"], found["noted_status"]) == (NID, "scheduled")
    assert abs(int(found["noted_at"]) - time.time() * 1000) < 5000
    assert r.ttl(slot[0]) > 30  # as long as a kept answer: a retry may come hours later
    r.hset(slot[0], "state", "done")
    assert run("idempotency/note", slot, ["fp", "another", "queued", 86_400]) == 0


@of("rate_limits/take")
def test_take_empties_a_bucket_then_says_how_long_to_wait(r: redis.Redis, run: Run) -> None:
    bucket = ["notifier:rate:shop"]
    per_ms = 1 / 3_600_000  # one an hour: nothing refills during the test
    assert [run("rate_limits/take", bucket, [2, per_ms])[0] for _ in range(2)] == [1, 1]
    allowed, wait = run("rate_limits/take", bucket, [2, per_ms])
    assert allowed == 0 and float(wait) == pytest.approx(3_600_000, rel=0.01)


@of("suppressions/add")
def test_add_keeps_the_entry_that_stops_more(r: redis.Redis, run: Run) -> None:
    key = ["notifier:suppressed:{shop}"]

    def entry(reason: str) -> str:
        return json.dumps({"reason": reason, "created_at": NOW})

    unsubscribed, complained, bounced = entry("unsubscribed"), entry("complained"), entry("bounced")
    assert run("suppressions/add", key, ["ada@example.com", unsubscribed, 1]) == [1, unsubscribed]
    assert run("suppressions/add", key, ["ada@example.com", unsubscribed, 1]) == [0, unsubscribed]
    assert run("suppressions/add", key, ["ada@example.com", complained, 2]) == [0, complained]
    assert run("suppressions/add", key, ["ada@example.com", unsubscribed, 1]) == [0, complained]
    assert run("suppressions/add", key, ["ada@example.com", bounced, 3]) == [0, bounced]
    assert run("suppressions/add", key, ["ada@example.com", complained, 2]) == [0, bounced]
    assert run("suppressions/add", key, ["ada@example.com", entry("manual"), 3]) == [0, bounced]
    assert r.hget(key[0], "ada@example.com") == bounced


# -- the layout before hash tags (its keys span slots: these run on a Redis that is no Cluster)


@of("layout/move_set")
def test_move_set_puts_each_member_in_its_shard(r: redis.Redis, run: Run) -> None:
    batch = "f0000000-0000-8000-8000-00000000000b"
    r.zadd("notifier:scheduled", {NID: 1, FAN_OUT_MEMBER + batch: 2, DONE_MEMBER + batch: 3})
    assert run("layout/move_set", ["notifier:scheduled"], ["scheduled"], cross_slot=True) == 3
    assert r.zrange(shard_key("a", "scheduled"), 0, -1, withscores=True) == [(NID, 1.0)]
    assert r.zrange(shard_key("f", "scheduled"), 0, -1) == [
        FAN_OUT_MEMBER + batch,
        DONE_MEMBER + batch,
    ]
    assert r.exists("notifier:scheduled") == 0


@of("layout/merge_counters")
def test_merge_counters_adds_the_old_to_shard_zero(r: redis.Redis, run: Run) -> None:
    new = shard_key("0", "metrics")
    r.hset("notifier:metrics", mapping={"final:mail:sent:live": 5, "attempts:mail:live": 7})
    r.hset(new, "final:mail:sent:live", 1)
    keys = ["notifier:metrics", new]
    assert run("layout/merge_counters", keys, [], cross_slot=True) == 2
    assert r.hgetall(new) == {"final:mail:sent:live": "6", "attempts:mail:live": "7"}
    assert r.exists("notifier:metrics") == 0


@of("layout/name_captcha")
def test_name_captcha_merges_a_window_and_keeps_a_newer_code(r: redis.Redis, run: Run) -> None:
    old, new = "notifier:captcha:phone:{+447700900123}", "notifier:captcha:phone:{" + "0" * 32 + "}"
    r.zadd(old, {"m1": 1000, "m2": 2000})
    r.pexpire(old, 50_000)
    r.zadd(new, {"m2": 2000, "m3": 3000})  # sent since the upgrade, under the new name
    r.pexpire(new, 80_000)
    assert run("layout/name_captcha", [old, new], [], cross_slot=True) == 1
    assert r.zrange(new, 0, -1) == ["m1", "m2", "m3"]  # each send counted once
    assert 50_000 < r.pttl(new) <= 80_000
    assert r.exists(old) == 0
    assert run("layout/name_captcha", [old, new], [], cross_slot=True) == 0  # moved already
    # A code: renamed with its expiry; dropped when the new name holds a newer one.
    code, named = "notifier:captcha:code:a:login:+447700900123", "notifier:captcha:code:a:login:{0}"
    r.hset(code, mapping={"digest": "d1", "attempts": 1})
    r.pexpire(code, 60_000)
    assert run("layout/name_captcha", [code, named], [], cross_slot=True) == 1
    assert r.hgetall(named) == {"digest": "d1", "attempts": "1"} and r.pttl(named) > 50_000
    r.hset(code, mapping={"digest": "d0", "attempts": 0})
    assert run("layout/name_captcha", [code, named], [], cross_slot=True) == 1
    assert r.hget(named, "digest") == "d1" and r.exists(code) == 0

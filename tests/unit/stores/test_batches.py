"""A batch's counts and allowance as its rows move, through the stores' Lua (a real Redis)."""

from __future__ import annotations

import threading
import time

import pytest
from flask import Flask

from notifier.runtime import Runtime
from notifier.schemas import BatchItem, BatchRequest
from notifier.services.batches import accept_batch, cancel_batch, fan_out
from notifier.services.delivery import Attempt
from notifier.stores.batches import batch_key, records, row_id
from notifier.stores.batches.keys import listed_keys, rows_key
from notifier.stores.slots import SHARDS
from tests.support.harness.batches import rows


def accepted(rt: Runtime, n: int, max_pending: int = 1000) -> str:
    """A batch of ``n`` rows for client c, fanned out: its id."""
    request = BatchRequest.model_validate({"template": "welcome", "recipients": rows(n, "s")})
    batch = accept_batch(
        request, client="c", sender="n@example.com", store=rt.batches, templates=rt.templates,
        queue=rt.fan_out_queue, max_pending=max_pending, callback=False,
    )  # fmt: skip
    fan_out(batch.id, store=rt.batches, queues=rt.row_queue_of)
    return batch.id


def test_a_row_settled_late_after_another_end_counts_as_final_once(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    batch_id = accepted(rt, 2)
    first, second = row_id(batch_id, 0), row_id(batch_id, 1)
    rt.store.claim(first, lease=30, max_attempts=1)
    rt.store.settle(first, "failed", provider="smtp", error="550")
    # The same row again, as a worker whose lease ran out would record it, after the end: on a
    # thread of its own (this thread's claim has its outcome, and records no other).
    late = threading.Thread(target=lambda: rt.store.settle(first, "sent", provider="smtp"))
    late.start()
    late.join()
    batch = rt.batches.get(batch_id)
    assert batch is not None and batch.status == "sending"
    assert batch.counts == {"queued": 1, "sent": 1}
    rt.store.claim(second, lease=30, max_attempts=1)
    rt.store.settle(second, "sent", provider="smtp")
    done = rt.batches.get(batch_id)
    assert done is not None and (done.status, done.counts) == ("done", {"sent": 2})


def test_a_cancelled_batchs_row_that_fails_is_cancelled_not_retried(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    batch_id = accepted(rt, 2)
    row = row_id(batch_id, 0)
    claim = rt.store.claim(row, lease=30, max_attempts=5)
    assert claim.status == "sending"
    outcome, batch = cancel_batch(batch_id, store=rt.batches, notifications=rt.store)
    assert outcome == "cancelled" and batch is not None
    assert batch.counts == {"sending": 1, "cancelled": 1}
    result = Attempt(rt.store, row, 1, {}, max_attempts=5).failed("451", provider="smtp")
    assert result.status == "skipped"
    record = rt.store.get(row)
    assert record is not None and record.status == "cancelled"
    done = rt.batches.get(batch_id)
    assert done is not None and (done.status, done.counts) == ("cancelled", {"cancelled": 2})
    assert rt.redis.hget(batch_key(batch_id), "done_at")


def test_the_pending_allowance_counts_a_batch_once_and_frees_it_when_done(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    assert rt.batches.take_pending("c", "b-1", 60, 100)
    assert rt.batches.take_pending("c", "b-1", 60, 100)  # a retried call: counted once
    assert not rt.batches.take_pending("c", "b-2", 60, 100)
    rt.batches.give_back("c", "b-1")
    # An entry long without its batch (it expired unfinished) stops counting.
    rt.redis.hset("notifier:batch_pending:c", "gone", "90:1")
    assert rt.batches.take_pending("c", "b-3", 60, 100)
    rt.batches.give_back("c", "b-3")
    batch_id = accepted(rt, 2, max_pending=2)
    assert not rt.batches.take_pending("c", "b-4", 1, 2)
    for index in range(2):
        rt.store.claim(row_id(batch_id, index), lease=30, max_attempts=1)
        rt.store.settle(row_id(batch_id, index), "sent", provider="smtp")
    assert rt.batches.take_pending("c", "b-4", 2, 2)


def test_the_newest_batches_are_listed_newest_first_and_an_expired_one_left_out(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The console's list of batches reads each shard's list of its newest, not a SCAN of
    every key; each list keeps LISTED."""
    rt: Runtime = app.extensions["notifier"]
    monkeypatch.setattr(records, "LISTED", 2)
    # One more than the shards' lists hold together: some shard surely got three (with 20, a
    # run in 27 had none that did).
    ids = [accepted(rt, 1) for _ in range(2 * len(SHARDS) + 1)]
    assert all(rt.redis.zcard(key) <= 2 for key in listed_keys())
    kept = {i for key in listed_keys() for i in rt.redis.zrange(key, 0, -1)}
    assert ids[-1] in kept and len(kept & set(ids)) < len(ids)
    listed = [b.id for b in rt.batches.recent(50) if b.id in ids]
    assert listed == [i for i in reversed(ids) if i in kept]  # newest first
    rt.redis.delete(batch_key(ids[-1]))  # expired meanwhile
    assert ids[-1] not in [b.id for b in rt.batches.recent(50)]


def test_a_fanned_out_chunk_keeps_no_copy_of_its_recipients(app: Flask) -> None:
    """Once a chunk's rows are notifications (each with its own payload until it is final), the
    batch no longer keeps their recipients: only rows not fanned out yet are in its rows."""
    rt: Runtime = app.extensions["notifier"]
    request = BatchRequest.model_validate({"template": "welcome", "recipients": rows(700, "k")})
    batch = accept_batch(
        request, client="c", sender="n@example.com", store=rt.batches, templates=rt.templates,
        queue=rt.fan_out_queue, max_pending=1000, callback=False,
    )  # fmt: skip
    assert sorted(rt.redis.hkeys(rows_key(batch.id))) == ["0", "1"]
    fan_out(batch.id, store=rt.batches, queues=rt.row_queue_of, chunks=1)
    assert rt.redis.hkeys(rows_key(batch.id)) == ["1"]
    items = page_of(rt, batch.id)
    assert [i.status for i in items] == ["queued"] * 700  # the unmade ones from the chunk
    fan_out(batch.id, store=rt.batches, queues=rt.row_queue_of)
    assert not rt.redis.exists(rows_key(batch.id))
    items = page_of(rt, batch.id)
    assert len(items) == 700 and {i.id for i in items} == {row_id(batch.id, n) for n in range(700)}


def test_a_page_read_while_its_chunk_is_fanned_out_still_has_every_row(
    app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page read the cursor (nothing fanned out), then the fan-out made the chunk's rows and
    # deleted the chunk before the page read it: its 500 rows were skipped as expired.
    rt: Runtime = app.extensions["notifier"]
    request = BatchRequest.model_validate({"template": "welcome", "recipients": rows(700, "p")})
    batch_id = accept_batch(
        request, client="c", sender="n@example.com", store=rt.batches, templates=rt.templates,
        queue=rt.fan_out_queue, max_pending=1000, callback=False,
    ).id  # fmt: skip
    stale = rt.batches.cursor(batch_id)
    assert stale[0] == 0
    fan_out(batch_id, store=rt.batches, queues=rt.row_queue_of, chunks=1)
    monkeypatch.setattr(rt.batches, "cursor", lambda _: stale)
    items = page_of(rt, batch_id)
    assert [i.id for i in items] == [row_id(batch_id, n) for n in range(700)]


def page_of(rt: Runtime, batch_id: str) -> list[BatchItem]:
    """Every row of the batch, as its pages show them."""
    batch = rt.batches.get(batch_id)
    assert batch is not None
    items, _ = rt.batches.page(batch, status=None, start=0, limit=1000, scan=1000)
    return items


def test_a_batch_whose_fan_out_message_was_lost_is_fanned_out_again(app: Flask) -> None:
    # Until its rows are made, a batch is its record and its fan-out message: that message
    # lost (a worker killed between BRPOP and its note of it, a retry a full Redis refused)
    # left it queued for ever, since the sweep of lost sends looked only at notifications.
    from notifier.tasks.schedule import LOST_AFTER, requeue_lost_fan_outs

    rt: Runtime = app.extensions["notifier"]
    request = BatchRequest.model_validate({"template": "welcome", "recipients": rows(700, "l")})
    batch_id = accept_batch(
        request, client="tester", sender="n@example.com", store=rt.batches,
        templates=rt.templates, queue=rt.fan_out_queue, max_pending=1000, callback=False,
    ).id  # fmt: skip
    lane = rt.fan_out_queue.queue
    assert rt.redis.llen(lane) == 1
    later = time.time() + LOST_AFTER + 1
    assert requeue_lost_fan_outs(rt, now=later) == 0  # its message is there: on its way
    rt.redis.delete(lane)  # lost
    assert requeue_lost_fan_outs(rt, now=time.time()) == 0  # not long enough ago
    assert requeue_lost_fan_outs(rt, now=later) == 0  # first seen at this count of rows
    assert requeue_lost_fan_outs(rt, now=later + LOST_AFTER) == 1  # no row made since
    assert rt.redis.llen(lane) == 1
    rt.redis.delete(lane)
    assert requeue_lost_fan_outs(rt, now=later + LOST_AFTER + 1) == 0  # not again at once
    # A fan-out that makes rows (a running one: its message taken, the lane empty) is left to
    # go on; copies of it every LOST_AFTER would each go on copying themselves.
    fan_out(batch_id, store=rt.batches, queues=rt.row_queue_of, chunks=1)
    assert requeue_lost_fan_outs(rt, now=later + 3 * LOST_AFTER) == 0
    # Fanned out in full: nothing to put back, however long it is looked at.
    fan_out(batch_id, store=rt.batches, queues=rt.row_queue_of)
    assert requeue_lost_fan_outs(rt, now=later + 5 * LOST_AFTER) == 0

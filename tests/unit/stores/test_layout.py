"""The keys a release before the hash tags wrote, moved by the first dispatch after an upgrade."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable

from flask import Flask

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.stores.captchas import Sender
from notifier.stores.layout import LAYOUT, VERSION, migrate
from notifier.stores.notifications import record_fields
from notifier.tasks.schedule import dispatch_due
from tests.support.harness.captcha import PHONE


def old_record(rt: Runtime, notification_id: str, status: str, batch: str = "") -> None:
    """A record, its payload, as the earlier release wrote them."""
    fields = record_fields(client="tester", kind="mail", status=status, now="2026-12-01T00:00:00Z",
                           test=False)  # fmt: skip
    fields["id"] = notification_id
    if batch:
        fields["batch"] = batch
    rt.redis.hset(f"notifier:n:{notification_id}", mapping=fields)
    rt.redis.expire(f"notifier:n:{notification_id}", 3600)
    rt.redis.set(f"notifier:p:{notification_id}", '{"to": ["a@example.com"]}', ex=3600)


def test_the_first_dispatch_after_an_upgrade_moves_every_old_key(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.redis.delete(LAYOUT)  # a Redis an earlier release wrote
    rt.layout_current = False  # a process that could not reach Redis as it started
    queued, due = str(uuid.uuid4()), str(uuid.uuid4())
    old_record(rt, queued, "queued")
    rt.redis.zadd("notifier:open", {queued: int(time.time())})
    old_record(rt, due, "scheduled")
    rt.redis.zadd("notifier:scheduled", {due: time.time() - 1})
    # A batch from before rows shared its shard: a version-4 id, its row's id derived the old way.
    batch_id = str(uuid.uuid4())
    row = str(uuid.uuid5(uuid.UUID(batch_id), "0"))
    old_record(rt, row, "queued", batch=batch_id)
    rt.redis.hset(f"notifier:b:{batch_id}", mapping={
        "id": batch_id, "client": "tester", "total": 1, "c:queued": 1, "final": 0, "fanned": 1,
        "published": 0, "ttl": 3600, "callback": "0", "state": "queued", "mode": "live",
        "created_at": "2026-12-01T00:00:00Z", "updated_at": "2026-12-01T00:00:00Z",
        "reference": "", "send_at": "",
    })  # fmt: skip
    rt.redis.set(f"notifier:bc:{batch_id}", "{}", ex=3600)
    rt.redis.hset(f"notifier:br:{batch_id}", "0", '[["a@example.com", {}, null]]')
    rt.redis.hset("notifier:metrics", "final:mail:sent:live", 5)
    rt.store.count("final:mail:sent:live")  # one counted by the new release meanwhile
    rt.redis.set("notifier:dispatched_at", time.time())
    # A phone inside its resend interval, and its sends of the day.
    now_ms = int(time.time() * 1000)
    rt.redis.set(f"notifier:captcha:resend:tester:login:{PHONE}", "m0", px=60_000)
    rt.redis.zadd(f"notifier:captcha:phone:{PHONE}", {"m0": now_ms})

    assert dispatch_due() == 1  # the old scheduled mail, found in its shard and queued

    assert rt.store.get(queued).status == "queued"  # type: ignore[union-attr]
    assert rt.store.payload(queued) == {"to": ["a@example.com"]}
    assert rt.store.get(due).status == "queued"  # type: ignore[union-attr]
    assert set(rt.store.open_since(time.time() + 1)) == {queued, due}
    assert rt.store.counted("final:mail:sent:live") == 6
    # The old batch's row still moves its batch's counts, to the end.
    rt.store.claim(row, lease=30, max_attempts=1)
    rt.store.settle(row, "sent", provider="smtp")
    batch = rt.batches.get(batch_id)
    assert batch is not None and (batch.status, batch.counts) == ("done", {"sent": 1})
    assert rt.batches.content(batch_id) == {}
    # The phone's interval and sends still count.
    refused = rt.captchas.take_send(
        Sender("tester", "login", PHONE), member="m1", resend_interval=60, daily_limit=1,
        ip_limit=10,
    )  # fmt: skip
    assert refused is not None and refused.limit == "resend_interval"
    rt.redis.delete(f"notifier:captcha:resend:tester:login:{{{PHONE}}}")
    refused = rt.captchas.take_send(
        Sender("tester", "login", PHONE), member="m1", resend_interval=60, daily_limit=1,
        ip_limit=10,
    )  # fmt: skip
    # The old window held every client's sends: it is the phone's ceiling now.
    assert refused is not None and refused.limit == "phone_daily_ceiling"
    # Nothing is left where the old release kept it, and the move is done once.
    left = [
        k for k in rt.redis.scan_iter("notifier:*")
        if "{" not in k and not k.startswith(("notifier:layout", "notifier:batch_pending"))
    ]  # fmt: skip
    assert left == []
    assert rt.redis.get(LAYOUT) == VERSION
    assert migrate(rt.redis) == 0


def test_a_move_another_process_is_making_is_left_to_it(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.redis.delete(LAYOUT)
    rt.redis.set("notifier:layout:lock", "1", ex=300)
    old_record(rt, "n-old", "queued")
    assert migrate(rt.redis) is None
    assert rt.store.get("n-old") is None  # not found until the other process is done
    rt.redis.delete("notifier:layout:lock")
    assert migrate(rt.redis) == 2  # its record and its payload
    assert rt.store.get("n-old") is not None


def test_a_process_that_starts_on_an_earlier_releases_redis_moves_its_keys_first(
    app: Flask, make_settings: Callable[..., Settings]
) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.redis.delete(LAYOUT)
    old_record(rt, "5eed", "queued")
    started = create_app(make_settings()).extensions["notifier"]
    assert started.layout_current
    assert started.store.get("5eed") is not None  # found before it serves a request

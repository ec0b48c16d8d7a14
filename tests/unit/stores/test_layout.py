"""The keys an earlier release wrote (before the hash tags, before captcha keys named their
recipients by pseudonyms), moved by the first dispatch or process after an upgrade."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from typing import cast

import pytest
from flask import Flask

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.captcha import scope
from notifier.stores.batches import batch_key
from notifier.stores.batches.keys import LISTED, listed_keys
from notifier.stores.captchas import Sender
from notifier.stores.layout import LAYOUT, VERSION, migrate
from notifier.stores.notifications import record_fields
from notifier.tasks.schedule import dispatch_due
from notifier.timestamps import rfc3339
from tests.support.harness.captcha import PHONE
from tests.support.harness.clients import auth
from tests.support.harness.console import console_users, log_in, page

ADDRESS = "Ada.Lovelace+login@gmail.com"
MAILBOX = "adalovelace@gmail.com"  # as the limits count ADDRESS


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
    rt.redis.delete(Sender("tester", "login", PHONE).recipient_keys(rt.log_secret)[0])
    refused = rt.captchas.take_send(
        Sender("tester", "login", PHONE), member="m1", resend_interval=60, daily_limit=1,
        ip_limit=10,
    )  # fmt: skip
    # The old window held every client's sends: it is the phone's ceiling now.
    assert refused is not None and refused.limit == "phone_daily_ceiling"
    # Nothing is left where the old release kept it (nor the phone in any key's name), and the
    # move is done once.
    left = [
        k for k in rt.redis.scan_iter("notifier:*")
        if "{" not in k and not k.startswith(("notifier:layout", "notifier:batch_pending"))
    ]  # fmt: skip
    assert left == []
    assert not [k for k in rt.redis.scan_iter("notifier:captcha:*") if PHONE in k]
    assert rt.redis.get(LAYOUT) == VERSION
    assert migrate(rt.redis, rt.log_secret) == 0


def test_a_move_another_process_is_making_is_left_to_it(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.redis.delete(LAYOUT)
    rt.redis.set("notifier:layout:lock", "1", ex=300)
    old_record(rt, "n-old", "queued")
    assert migrate(rt.redis, rt.log_secret) is None
    assert rt.store.get("n-old") is None  # not found until the other process is done
    rt.redis.delete("notifier:layout:lock")
    assert migrate(rt.redis, rt.log_secret) == 2  # its record and its payload
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


def version_2_captcha_keys(rt: Runtime, now_ms: int, sends: int) -> None:
    """What the release before the pseudonyms kept of ``sends`` login codes to PHONE (the last
    still pending) from one end user's address, and of as many to a Gmail mailbox."""
    members = {f"m{n}": now_ms - 1000 * (sends - n) for n in range(sends)}
    for window, counted in (("phone", PHONE), ("mail", MAILBOX)):
        rt.redis.zadd(f"notifier:captcha:{window}:{{{counted}}}", members)
        rt.redis.zadd(f"notifier:captcha:{window}:{{{counted}}}:tester", members)
        rt.redis.pexpire(f"notifier:captcha:{window}:{{{counted}}}", 86_400_000)
        rt.redis.pexpire(f"notifier:captcha:{window}:{{{counted}}}:tester", 86_400_000)
        rt.redis.set(f"notifier:captcha:resend:tester:login:{{{counted}}}", "m", px=60_000)
    rt.redis.zadd("notifier:captcha:ip:{198.51.100.7}", members)
    rt.redis.zadd("notifier:captcha:ip:{198.51.100.7}:tester", members)
    for recipient in (PHONE, ADDRESS):
        where = scope("tester", "login", recipient)
        code = f"notifier:captcha:code:{where}"
        rt.redis.hset(code, mapping={"digest": rt.captchas.digest(where, "123456"), "attempts": 1})
        rt.redis.pexpire(code, 300_000)


def test_captcha_keys_move_to_their_pseudonyms_and_keep_counting(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.redis.set(LAYOUT, "2")  # a Redis the release before the pseudonyms wrote
    version_2_captcha_keys(rt, int(time.time() * 1000), sends=4)

    # Phone and mailbox: two windows, a resend interval, a code; the end user's address's two.
    assert migrate(rt.redis, rt.log_secret) == 10
    assert migrate(rt.redis, rt.log_secret) == 0  # once
    names = list(rt.redis.scan_iter("notifier:captcha:*"))
    assert len(names) == 10
    assert not [n for n in names if PHONE in n or "@" in n or "198.51" in n]
    # The codes sent before the upgrade still verify (a wrong try before it still counts).
    for recipient in (PHONE, ADDRESS):
        where = scope("tester", "login", recipient)
        assert rt.captchas.verify(where, "000000", max_attempts=3).attempts_left == 1
        assert rt.captchas.verify(where, "123456", max_attempts=3).valid
    # Four sends before the upgrade: a limit of five takes one more, then refuses.
    for counted, window in ((PHONE, "phone"), (MAILBOX, "mail")):
        sender = Sender("tester", "login", counted, "198.51.100.7", window)
        refused = rt.captchas.take_send(
            sender, member="m4", resend_interval=60, daily_limit=5, ip_limit=50
        )
        assert refused is not None and refused.limit == "resend_interval"  # still running
        rt.redis.delete(sender.recipient_keys(rt.log_secret)[0])
        assert rt.captchas.take_send(
            sender, member="m4", resend_interval=0, daily_limit=5, ip_limit=50
        ) is None  # fmt: skip
        refused = rt.captchas.take_send(
            sender, member="m5", resend_interval=0, daily_limit=5, ip_limit=50
        )
        assert refused is not None and refused.limit == "daily_limit"
    # The address's hour, kept under its pseudonym: its four, and the phone's fifth.
    refused = rt.captchas.take_send(
        Sender("tester", "login", "+447700900999", "198.51.100.7"), member="m6",
        resend_interval=0, daily_limit=5, ip_limit=5,
    )  # fmt: skip
    assert refused is not None and refused.limit == "ip_limit"


def test_a_send_under_the_new_name_before_the_move_is_not_lost(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    now_ms = int(time.time() * 1000)
    version_2_captcha_keys(rt, now_ms, sends=3)
    # A process of this release counted a send before the move was made (it could not reach
    # Redis as it started): both names hold sends, and the move adds them up.
    sender = Sender("tester", "login", PHONE)
    for key in sender.recipient_keys(rt.log_secret)[1:]:
        rt.redis.zadd(key, {"new": now_ms})
    rt.redis.set(LAYOUT, "2")
    assert migrate(rt.redis, rt.log_secret) == 10
    rt.redis.delete(sender.recipient_keys(rt.log_secret)[0])  # its resend interval
    refused = rt.captchas.take_send(
        sender, member="m4", resend_interval=0, daily_limit=4, ip_limit=50
    )
    assert refused is not None and refused.limit == "daily_limit"


def old_batch(rt: Runtime, batch_id: str, made: float) -> None:
    """A batch as the release before wrote it: in its shard, in no list."""
    at = rfc3339(made)
    rt.redis.hset(batch_key(batch_id), mapping={
        "id": batch_id, "client": "tester", "total": 1, "c:queued": 1, "final": 0, "fanned": 0,
        "published": 0, "ttl": 3600, "callback": "0", "state": "queued", "mode": "live",
        "created_at": at, "updated_at": at, "reference": "", "send_at": "",
    })  # fmt: skip
    rt.redis.expire(batch_key(batch_id), 3600)


def newest(rt: Runtime, key: str) -> list[tuple[str, float]]:
    """A shard's list of batches, newest first, with their scores."""
    return cast(list[tuple[str, float]], rt.redis.zrevrange(key, 0, -1, withscores=True))


def lists(rt: Runtime) -> dict[str, list[tuple[str, float]]]:
    return {key: newest(rt, key) for key in listed_keys()}


def test_batches_stored_before_the_console_listed_them_are_listed_once(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(console_users=console_users()))
    rt: Runtime = app.extensions["notifier"]
    now = time.time()
    # A batch of this release, listed as it was stored; 201 before it in shard a, one in b.
    rows = [{"to": "ada@example.com", "data": {}}]
    answer = app.test_client().post("/v1/mail/batch", headers=auth(), json={
        "subject": "Hi", "text": "Hello", "recipients": rows})  # fmt: skip
    assert answer.status_code == 202, answer.get_data(as_text=True)
    new = answer.get_json()["id"]
    before = dict(newest(rt, f"notifier:{{{new[0]}}}:batches"))
    in_a = ["a" + str(uuid.uuid4())[1:] for _ in range(LISTED + 1)]  # oldest first
    for n, batch_id in enumerate(in_a):
        old_batch(rt, batch_id, now - 7200 + n)
    in_b = "b" + str(uuid.uuid4())[1:]
    old_batch(rt, in_b, now - 60)
    rt.redis.set(LAYOUT, "2")  # the release before

    more = migrate(rt.redis, rt.log_secret, batch=50)
    assert more == sum(len(batches) for batches in lists(rt).values()) - 1  # all but the new

    shard_a = newest(rt, "notifier:{a}:batches")
    kept = [b for b in [new, *reversed(in_a)] if b[0] == "a"][:LISTED]  # the newest, by time
    assert [b for b, _ in shard_a] == kept
    assert dict(shard_a)[in_a[-1]] == pytest.approx(now - 7200 + LISTED, abs=0.001)
    assert rt.redis.zscore("notifier:{b}:batches", in_b) == pytest.approx(now - 60, abs=0.001)
    # The batch already listed keeps its score; a second run changes nothing.
    assert rt.redis.zscore(f"notifier:{{{new[0]}}}:batches", new) == before[new]
    listed = lists(rt)
    rt.redis.set(LAYOUT, "2")
    assert migrate(rt.redis, rt.log_secret) == 0
    assert lists(rt) == listed
    # The console's batch page lists them, newest first.
    operator = app.test_client()
    assert log_in(operator).status_code == 303
    html = page(operator, "/console/batches")
    shown = re.findall(r'href="/console/batches/([0-9a-f-]{36})"', html)
    assert shown[:3] == [new, in_b, in_a[-1]] and len(shown) == 50
    assert in_a[0] not in html

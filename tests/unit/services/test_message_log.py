"""The message log's interface (notifier.services.message_log), as the console uses it: what
any implementation of it must do, the stand-in's scan and the indexes that replace it alike."""

from __future__ import annotations

import time

from flask import Flask

from notifier.runtime import Runtime
from notifier.services.message_log import LogFilter, page, timeline
from tests.support.harness.clients import auth
from tests.support.harness.console import scheduled

MAIL = {"subject": "Hi", "text": "Hello"}


def test_each_filter_and_the_recipient_narrow_the_log(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    api = app.test_client()
    before = time.time() - 1
    ada = scheduled(api, "shop", {"to": ["ada@example.com"], "reference": "r-1", **MAIL})
    bob = scheduled(api, "shop", {"to": ["bob@example.com"], **MAIL})
    bank = scheduled(api, "bank", {"to": ["ada@example.com"], **MAIL})
    sms = scheduled(api, "shop", {"to": "+8613800138000", "text": "Hi"}, "/v1/sms")
    sent = api.post("/v1/mail", json={"to": ["cy@example.com"], **MAIL}, headers=auth("shop"))
    queued = sent.get_json()["id"]

    def ids(**wanted: object) -> set[str]:
        return {n.id for n in page(rt, LogFilter(**wanted)).rows}  # type: ignore[arg-type]

    assert ids(client="shop") == {ada, bob, sms, queued}
    assert ids(client="shop", kind="sms") == {sms}
    assert ids(client="shop", status="queued") == {queued}
    assert ids(reference="r-1") == {ada}
    assert ids(recipient="ada@example.com") == {ada, bank}
    assert ids(recipient="ada@example.com", client="bank") == {bank}
    assert ids(recipient="+8613800138000") == {sms}
    assert ids(recipient="nobody@example.com") == set()
    assert ids(since=before) == {ada, bob, bank, sms, queued}
    assert ids(until=before) == set()
    shown = page(rt, LogFilter(client="bank")).rows[0]
    assert shown.public() == api.get(f"/v1/notifications/{bank}", headers=auth("bank")).get_json()


def test_pages_run_newest_first_to_the_end_without_a_row_twice(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    api = app.test_client()
    made = [scheduled(api, "shop", {"to": [f"p{n}@example.com"], **MAIL}) for n in range(5)]
    seen, cursor = [], None
    while True:
        found = page(rt, LogFilter(client="shop"), cursor=cursor, limit=2)
        assert len(found.rows) <= 2
        seen += found.rows
        if found.next_cursor is None:
            break
        cursor = found.next_cursor
    assert sorted(n.id for n in seen) == sorted(made)
    stamps = [n.created_at for n in seen]
    assert stamps == sorted(stamps, reverse=True)


def test_a_timeline_starts_when_it_was_accepted_and_none_for_an_unknown_id(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    made = scheduled(app.test_client(), "shop", {"to": ["ada@example.com"], **MAIL})
    events = timeline(rt, made)
    assert events
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert timeline(rt, "00000000-0000-4000-8000-000000000000") is None

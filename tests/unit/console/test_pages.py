"""The console's pages through a logged-in test client: what each shows, masked, and what its
buttons change (through the services the API uses)."""

from __future__ import annotations

import logging
import re
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from flask import Flask
from flask.testing import FlaskClient

from notifier.lanes import LANES
from notifier.runtime import Runtime
from notifier.services.batches import cancel_batch, fan_out
from notifier.services.mail import deliver_mail
from notifier.stores.batches import new_batch_id, row_id
from notifier.stores.guard import count_sent
from tests.support.harness.clients import auth
from tests.support.harness.console import BASE, OPERATOR, csrf_of, page, pause_mail, scheduled

MAIL = {"subject": "Hi", "text": "Hello"}


def _search(operator: FlaskClient, **form: str) -> str:
    """The message log after the search form is sent with ``form``."""
    html = page(operator, "/console/messages")
    answer = operator.post(
        "/console/messages/search", data={"csrf": csrf_of(html), **form}, base_url=BASE
    )
    assert answer.status_code == 303
    where = urlsplit(answer.headers["Location"])
    return page(operator, f"{where.path}?{where.query}")


def _ids(html: str) -> set[str]:
    return set(re.findall(r'href="/console/notifications/([0-9a-f-]{36})"', html))


def test_a_recipient_search_finds_its_notifications_masked_and_no_other(
    app: Flask, operator: FlaskClient
) -> None:
    api = app.test_client()
    mine = scheduled(api, "shop", {"to": ["ada@example.com"], **MAIL})
    other_client = scheduled(api, "bank", {"to": ["ada@example.com"], **MAIL})
    other_person = scheduled(api, "shop", {"to": ["bob@example.com"], **MAIL})
    sms = scheduled(api, "shop", {"to": "+8613800138000", "text": "Hi"}, "/v1/sms")
    found = _search(operator, recipient="ada@example.com", client="shop")
    assert _ids(found) == {mine}
    assert "a***@example.com" in found and "ada@example.com" not in found
    # The URL carries the search sealed, never the address.
    sealed = re.search(r'name="q" value="([^"]+)"', found)
    assert sealed is not None and "ada" not in sealed.group(1) and "example" not in sealed.group(1)
    both = _search(operator, recipient="ada@example.com")
    assert _ids(both) == {mine, other_client}
    by_number = _search(operator, recipient="+8613800138000")
    assert _ids(by_number) == {sms}
    assert "+86138****8000" in by_number and "+8613800138000" not in by_number
    assert other_person not in _ids(_search(operator, recipient="nobody@example.com"))
    # As the API takes a number or an address, so the search: spaced, dashed, in capitals.
    for typed in ("+86 138 0013 8000", "+86-138-0013-8000"):
        spaced = _search(operator, recipient=typed)
        assert _ids(spaced) == {sms} and "+86138****8000" in spaced
    assert "a***@example.com" in _search(operator, recipient="Ada@Example.COM")


def test_the_log_takes_in_the_whole_minute_it_is_filtered_to_and_an_offset(
    app: Flask, operator: FlaskClient
) -> None:
    made = scheduled(app.test_client(), "shop", {"to": ["ada@example.com"], **MAIL})
    created = app.extensions["notifier"].store.get(made).created_at  # ...T20:02:10.123Z
    minute = created[:16]
    assert _ids(page(operator, f"/console/messages?since={minute}&until={minute}")) == {made}
    hour = int(minute[11:13])
    # The same minute an hour later at +01:00 is this one; an hour earlier at +01:00 is before.
    later = f"{minute[:11]}{(hour + 1) % 24:02d}{minute[13:]}%2B01:00"
    if (hour + 1) % 24 > hour:  # not across midnight, where the date would change too
        assert _ids(page(operator, f"/console/messages?until={later}")) == {made}
        assert _ids(page(operator, f"/console/messages?since={later}")) == {made}
    earlier = f"{minute[:11]}{hour:02d}{minute[13:]}%2B01:00"
    assert _ids(page(operator, f"/console/messages?until={earlier}")) == set()


def test_a_cursor_the_log_never_gave_is_a_400_page(operator: FlaskClient) -> None:
    answer = operator.get("/console/messages?cursor=abc", base_url=BASE)
    assert answer.status_code == 400
    assert answer.mimetype == "text/html" and "cursor" in answer.get_data(as_text=True)


@pytest.mark.parametrize(
    "query", ["since=9999-12-31T23:59-05:00", "until=0001-01-01T00:00%2B05:00", "since=soon"]
)
def test_a_time_it_cannot_place_is_a_400_page(operator: FlaskClient, query: str) -> None:
    """Past year 9999 in UTC (or before year 1) is a 400 naming the filter, not a 500."""
    answer = operator.get(f"/console/messages?{query}", base_url=BASE)
    assert answer.status_code == 400
    assert query.split("=")[0] in answer.get_data(as_text=True)


def test_the_log_filters_and_pages_by_cursor(app: Flask, operator: FlaskClient) -> None:
    api = app.test_client()
    made = [scheduled(api, "shop", {"to": [f"p{n}@example.com"], **MAIL}) for n in range(3)]
    answer = api.post("/v1/mail", json={"to": ["q@example.com"], **MAIL}, headers=auth("bank"))
    assert answer.status_code == 202
    html = page(operator, "/console/messages?client=shop&status=scheduled")
    assert _ids(html) == set(made)
    # A page of one row at a time, newest first, to the end.
    from notifier.services import message_log

    rt: Runtime = app.extensions["notifier"]
    seen, cursor = [], None
    while True:
        found = message_log.page(rt, message_log.LogFilter(client="shop"), cursor=cursor, limit=1)
        seen += [r.id for r in found.rows]
        if found.next_cursor is None:
            break
        cursor = found.next_cursor
    assert sorted(seen) == sorted(made) and len(seen) == 3
    assert operator.get("/console/messages?status=nonsense", base_url=BASE).status_code == 400


def test_cancel_from_the_timeline_stops_a_scheduled_mail(app: Flask, operator: FlaskClient) -> None:
    made = scheduled(app.test_client(), "shop", {"to": ["ada@example.com"], **MAIL})
    html = page(operator, f"/console/notifications/{made}")
    assert "Cancel this notification" in html and "accepted" in html
    answer = operator.post(
        f"/console/notifications/{made}/cancel", data={"csrf": csrf_of(html)}, base_url=BASE
    )
    assert answer.status_code == 303
    assert app.extensions["notifier"].store.get(made).status == "cancelled"
    after = page(operator, f"/console/notifications/{made}")
    assert "Cancel this notification" not in after and "cancelled" in after
    again = operator.post(
        f"/console/notifications/{made}/cancel", data={"csrf": csrf_of(after)}, base_url=BASE
    )
    assert again.status_code == 409


def test_a_batch_shows_its_progress_rows_and_cancels(app: Flask, operator: FlaskClient) -> None:
    rows = [{"to": f"r{n}@example.com", "data": {}} for n in range(5)]
    answer = app.test_client().post(
        "/v1/mail/batch", json={"subject": "Hi", "text": "Hello", "recipients": rows},
        headers=auth("shop"),
    )  # fmt: skip
    batch = answer.get_json()["id"]
    html = page(operator, f"/console/batches/{batch}")
    assert '<progress id="progress" aria-labelledby="progress-text" max="5" value="0">' in html
    assert "0 of 5 done" in html and "r0@example.com" not in html
    assert batch in page(operator, "/console/batches")
    cancelled = operator.post(
        f"/console/batches/{batch}/cancel", data={"csrf": csrf_of(html)}, base_url=BASE
    )
    assert cancelled.status_code == 303
    after = page(operator, f"/console/batches/{batch}")
    assert "5 of 5 done" in after and "data-live-final" in after


def made_batch(app: Flask, size: int) -> str:
    """A mail batch of ``size`` rows for "shop", stored and not fanned out yet; its id."""
    batch = new_batch_id()
    rows: list[tuple[str, dict[str, Any], str | None, dict[str, str]]] = [
        (f"u{n}@example.com", {}, None, {}) for n in range(size)
    ]
    with app.app_context():
        app.extensions["notifier"].batches.create(
            batch_id=batch, client="shop", content={"subject": "s", "text": "t"}, rows=rows,
            send_at=None, reference=None, test=False, callback=False,
        )  # fmt: skip
    return batch


def test_a_batch_cancelled_with_a_row_under_way_goes_on_refreshing_until_it_is_done(
    app: Flask, operator: FlaskClient
) -> None:
    rt: Runtime = app.extensions["notifier"]
    batch = made_batch(app, 4)
    with app.app_context():
        fan_out(batch, store=rt.batches, queues=rt.row_queue_of)
        rt.store.claim(row_id(batch, 0), lease=60, max_attempts=3)
        cancel_batch(batch, store=rt.batches, notifications=rt.store)
    html = page(operator, f"/console/batches/{batch}")
    assert "3 of 4 done" in html and "data-live-final" not in html  # the live page goes on
    with app.app_context():
        rt.store.settle(row_id(batch, 0), "sent", provider="memory")
    after = page(operator, f"/console/batches/{batch}")
    assert "4 of 4 done" in after and "data-live-final" in after


def test_a_batch_reads_100_percent_only_when_done_and_links_only_rows_made(
    app: Flask, operator: FlaskClient
) -> None:
    rt: Runtime = app.extensions["notifier"]
    batch = made_batch(app, 1000)
    # Not fanned out yet: its rows have no notification page, so no link to a 404.
    html = page(operator, f"/console/batches/{batch}")
    assert row_id(batch, 0) in html and "/console/notifications/" not in html
    with app.app_context():
        fan_out(batch, store=rt.batches, queues=rt.row_queue_of)
        for n in range(999):
            rt.store.settle(row_id(batch, n), "sent", provider="memory")
    html = page(operator, f"/console/batches/{batch}")
    assert "999 of 1000 done (99%)" in html and "data-live-final" not in html
    assert f'href="/console/notifications/{row_id(batch, 0)}"' in html
    assert (
        operator.get(f"/console/notifications/{row_id(batch, 0)}", base_url=BASE).status_code == 200
    )
    with app.app_context():
        rt.store.settle(row_id(batch, 999), "sent", provider="memory")
    assert "1000 of 1000 done (100%)" in page(operator, f"/console/batches/{batch}")


def test_suppressions_search_add_and_remove_with_who_did_it(
    app: Flask, operator: FlaskClient
) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.suppressions.add("shop", "bounced@example.com", "bounced")
    html = page(operator, "/console/suppressions?client=shop")
    added = operator.post(
        "/console/suppressions/add",
        data={"csrf": csrf_of(html), "client": "shop", "address": "Carol@Example.com"},
        base_url=BASE,
    )
    assert added.status_code == 303
    listed = page(operator, "/console/suppressions?client=shop")
    assert "c***@example.com" in listed and "b***@example.com" in listed
    assert 'aria-label="Remove c***@example.com"' in listed  # which address each button removes
    assert "carol@example.com" not in listed.lower() and "bounced@example.com" not in listed
    entry = rt.suppressions.get("shop", "carol@example.com")
    assert entry is not None and (entry.reason, entry.by) == ("manual", "ada")
    assert re.search(r"c\*\*\*@example.com</td><td>manual</td><td>[^<]+</td><td>ada</td>", listed)
    # Found by search, and removed from the page (the address travels sealed).
    found = operator.post(
        "/console/suppressions/search",
        data={"csrf": csrf_of(listed), "client": "shop", "address": "carol@example.com"},
        base_url=BASE,
    )
    shown = page(operator, found.headers["Location"])
    assert shown.count('class="entry"') == 1
    target = re.search(r'name="target" value="([^"]+)"', shown)
    assert target is not None
    removed = operator.post(
        "/console/suppressions/remove",
        data={"csrf": csrf_of(shown), "client": "shop", "target": target.group(1)},
        base_url=BASE,
    )
    assert removed.status_code == 303
    assert rt.suppressions.get("shop", "carol@example.com") is None
    bad = operator.post(
        "/console/suppressions/add",
        data={"csrf": csrf_of(shown), "client": "shop", "address": "not an address"},
        base_url=BASE,
    )
    assert bad.status_code == 400


def test_the_overview_shows_each_lane_and_its_sends_a_minute(
    app: Flask, operator: FlaskClient
) -> None:
    rt: Runtime = app.extensions["notifier"]
    answer = app.test_client().post(
        "/v1/mail", json={"to": ["ada@example.com"], **MAIL}, headers=auth("shop")
    )
    sent = answer.get_json()["id"]
    html = page(operator, "/console/")
    assert re.search(r'id="lane-mail">\s*<td>mail</td>\s*<td class="num depth">1</td>', html)
    deliver_mail(rt.delivery, sent, lane="mail")  # the in-memory provider takes it
    html = page(operator, "/console/")
    for lane in LANES:
        assert f'id="lane-{lane}"' in html
    assert "<svg" in html and "1 sent, this minute" in html
    clients = page(operator, "/console/clients")
    assert re.search(r'id="client-shop-mail">\s*<td rowspan="1">shop</td>\s*<td rowspan="1">live'
                     r"</td>\s*<td>mail</td><td class=\"num\">1</td>", clients)  # fmt: skip


def test_the_overview_shows_failures_by_provider(app: Flask, operator: FlaskClient) -> None:
    # The contract: "failures and provider errors by provider" (they were shown by kind).
    rt: Runtime = app.extensions["notifier"]
    refused, bounced, expired, sent, tried = (
        app.test_client()
        .post("/v1/mail", json={"to": [f"p{n}@example.com"], **MAIL}, headers=auth("shop"))
        .get_json()["id"]
        for n in range(5)
    )
    rt.store.claim(refused, lease=30, max_attempts=3)
    rt.store.settle(refused, "failed", provider="ses", error="MessageRejected")
    for one in (bounced, sent):
        rt.store.claim(one, lease=30, max_attempts=3)
        rt.store.settle(one, "sent", provider="smtp", provider_ref=f"<{one}>")
    rt.store.receipt("smtp", f"<{bounced}>", "undelivered", error="unreachable")
    rt.store.claim(expired, lease=0, max_attempts=1)
    assert rt.store.claim(expired, lease=30, max_attempts=1).status == "failed"  # no provider
    rt.store.claim(tried, lease=30, max_attempts=3)
    rt.store.settle(tried, "retrying", provider="sendgrid", error="429")  # not final
    failures = page(operator, "/console/").split("<h2>Failures</h2>", 1)[1].split("</div>", 1)[0]
    rows = re.findall(r'<tr><td>([^<]+)</td><td class="num">(\d+)</td></tr>', failures)
    assert "<th>Provider</th>" in failures
    assert rows == [("none", "1"), ("ses", "1"), ("smtp", "1")]


def test_resume_a_paused_client_from_its_row(
    app: Flask, operator: FlaskClient, caplog: pytest.LogCaptureFixture
) -> None:
    rt: Runtime = app.extensions["notifier"]
    api = app.test_client()
    pause_mail(rt.redis, "shop")
    mail = {"to": ["ada@example.com"], **MAIL}
    assert api.post("/v1/mail", json=mail, headers=auth("shop")).status_code == 403
    html = page(operator, "/console/clients")
    assert "paused: bounce rate 10.0% of 10 mails" in html
    assert html.count('class="resume"') == 1  # the shop's row only: the bank is not paused
    assert 'action="/console/clients/bank/resume"' not in html
    # Without the session's token: refused, and still paused.
    refused = operator.post("/console/clients/shop/resume", data={}, base_url=BASE)
    assert refused.status_code == 403 and rt.guard.paused("shop") is not None
    with caplog.at_level(logging.INFO, logger="notifier.console.audit"):
        answer = operator.post(
            "/console/clients/shop/resume", data={"csrf": csrf_of(html)}, base_url=BASE
        )
    assert answer.status_code == 303
    assert answer.headers["Location"] == "/console/clients?resumed=shop"
    lines = [r for r in caplog.records if r.name == "notifier.console.audit"]
    assert [(r.action, r.target, r.operator, r.client) for r in lines] == [  # type: ignore[attr-defined]
        ("resume_client", "shop", OPERATOR, "shop")
    ]
    assert rt.guard.paused("shop") is None
    assert rt.guard.figures(["shop"])["shop"].volume == 0  # its window starts again
    assert api.post("/v1/mail", json=mail, headers=auth("shop")).status_code == 202
    after = page(operator, answer.headers["Location"])
    assert 'id="notice"' in after and "The mail of shop is resumed" in after
    assert 'class="resume"' not in after
    # Again, now that it is not paused: a stale page's button changes nothing (its window,
    # with a mail counted since, is kept).
    with rt.redis.pipeline() as pipe:
        count_sent(pipe, "shop", time.time())
        pipe.execute()
    again = operator.post(
        "/console/clients/shop/resume", data={"csrf": csrf_of(after)}, base_url=BASE
    )
    assert again.status_code == 409 and "not paused" in again.get_data(as_text=True)
    assert rt.guard.figures(["shop"])["shop"].volume == 1
    unknown = operator.post(
        "/console/clients/nobody/resume", data={"csrf": csrf_of(after)}, base_url=BASE
    )
    assert unknown.status_code == 404

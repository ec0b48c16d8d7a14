"""Suppression lists applied at delivery: deliver_mail with the in-memory provider and a real
Redis (a batch's rows through the stores' Lua)."""

from __future__ import annotations

from flask import Flask

from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.schemas import BatchRequest
from notifier.services.batches import accept_batch, fan_out
from notifier.services.mail import deliver_mail
from notifier.stores.batches import row_id
from tests.support.delivery import delivery
from tests.support.harness.mail import PAYLOAD


def deliver(rt: Runtime, notification_id: str, mail: MemoryMailProvider) -> str:
    return deliver_mail(delivery(rt, mail=mail), notification_id).status


def single(rt: Runtime, n: str, **payload: object) -> str:
    body = {**PAYLOAD, "client": "c", "bcc": [], **payload}
    return rt.store.create(notification_id=n, client="c", kind="mail", payload=body).id


def test_a_mail_to_a_suppressed_address_is_suppressed_not_sent(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.suppressions.add("c", "Ada@Example.com", "manual")
    mail = MemoryMailProvider()
    assert deliver(rt, single(rt, "n1"), mail) == "skipped"
    assert mail.sent == []
    record = rt.store.get("n1")
    assert record is not None and (record.status, record.error) == (
        "suppressed",
        "the address is on the suppression list (manual)",
    )
    assert rt.store.payload("n1") is None  # final: the content is gone
    # Another client's list is its own.
    rt.store.create(
        notification_id="n2", client="d", kind="mail", payload={**PAYLOAD, "client": "d"}
    )
    assert deliver(rt, "n2", mail) == "sent"


def test_the_others_of_a_mail_still_get_it(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.suppressions.add("c", "gone@example.com", "bounced")
    mail = MemoryMailProvider()
    notification_id = single(rt, "n1", to=["ada@example.com", "gone@example.com"])
    assert deliver(rt, notification_id, mail) == "sent"
    assert mail.sent[0].to == ("ada@example.com",)


def test_an_unsubscribe_stops_bulk_mail_only(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.suppressions.add("c", "ada@example.com", "unsubscribed")
    mail = MemoryMailProvider()
    # A receipt (a single mail that did not ask for unsubscribe) still reaches the person...
    assert deliver(rt, single(rt, "n1"), mail) == "sent"
    # ...a bulk one does not.
    assert deliver(rt, single(rt, "n2", bulk=True), mail) == "skipped"
    record = rt.store.get("n2")
    assert record is not None and record.status == "suppressed"


def test_a_complaint_stops_every_mail_and_stops_more_than_an_unsubscribe(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    rt.suppressions.add("c", "ada@example.com", "unsubscribed")
    entry, new = rt.suppressions.add("c", "ada@example.com", "complained")
    assert (entry.reason, new) == ("complained", False)
    assert rt.suppressions.add("c", "ada@example.com", "unsubscribed")[0].reason == "complained"
    mail = MemoryMailProvider()
    # A receipt does not go, as it would to an address that only unsubscribed.
    assert deliver(rt, single(rt, "n1"), mail) == "skipped"
    record = rt.store.get("n1")
    assert record is not None and (record.status, record.error) == (
        "suppressed",
        "the address is on the suppression list (complained)",
    )
    assert rt.suppressions.add("c", "ada@example.com", "bounced")[0].reason == "bounced"


def test_a_batchs_suppressed_row_is_counted_and_the_batch_ends(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    recipients = [
        {"to": "ada@example.com", "data": {"name": "Ada", "product": "A", "login_url": "u"}},
        {"to": "bob@example.com", "data": {"name": "Bob", "product": "A", "login_url": "u"}},
    ]
    rt.suppressions.add("c", "bob@example.com", "unsubscribed")
    request = BatchRequest.model_validate({"template": "welcome", "recipients": recipients})
    batch = accept_batch(
        request, client="c", sender="n@example.com", store=rt.batches, templates=rt.templates,
        queue=rt.fan_out_queue, max_pending=100, callback=False,
    )  # fmt: skip
    fan_out(batch.id, store=rt.batches, queues=rt.row_queue_of)
    mail = MemoryMailProvider()
    assert [deliver(rt, row_id(batch.id, i), mail) for i in (0, 1)] == ["sent", "skipped"]
    found = rt.batches.get(batch.id)
    assert found is not None
    assert (found.status, found.counts) == ("done", {"sent": 1, "suppressed": 1})
    assert rt.store.counted("final:mail:suppressed:live") == 1

"""notifier_client calls every keyed route of /openapi.json, and reads each answer, against the
app itself (httpx's WSGI transport, in-memory providers, no worker)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import notifier_client as nc
import pytest
from flask import Flask, request

from notifier.providers.registry import UPLOAD_STORES
from tests.support.harness.clients import KEYS, bucket


@pytest.fixture
def called(app: Flask) -> list[tuple[str, str]]:
    """Each (method, route rule) the app served, as it served them; the upload route as the
    document lists it, once a store (its ``<store>`` filled in)."""
    served: list[tuple[str, str]] = []

    @app.after_request
    def note(response: object) -> object:
        if request.url_rule is not None:
            store = (request.view_args or {}).get("store", "<store>")
            served.append((request.method, request.url_rule.rule.replace("<store>", store)))
        return response

    return served


@pytest.fixture
def api(app: Flask, called: list[tuple[str, str]]) -> Iterator[nc.Client]:
    """A client of the app with the tester's key (every scope)."""
    transport = httpx.WSGITransport(app=app)
    with nc.Client("http://notifier.test", KEYS["tester"], transport=transport) as client:
        yield client


def test_a_base_url_ending_in_v1_is_not_found_not_an_empty_suppression_list(app: Flask) -> None:
    """The service's 404 for /v1/v1/suppressions/... is not the route's "not on the list"."""
    transport = httpx.WSGITransport(app=app)
    wrong = nc.Client("http://notifier.test/v1", KEYS["tester"], transport=transport)
    with wrong, pytest.raises(nc.NotFound):
        wrong.get_suppression("gone@example.com")


def test_every_route_with_a_key_has_a_method_that_reads_its_answer(
    app: Flask, api: nc.Client, called: list[tuple[str, str]]
) -> None:
    later = datetime.now(UTC) + timedelta(hours=1)
    mail = api.send_mail(to=["ada@example.com"], subject="Hi", text="x", send_at=later)
    assert (mail.status, mail.replayed) == ("scheduled", False)
    again = api.send_mail(
        to=["ada@example.com"],
        subject="Hi",
        text="x",
        send_at=later,
        idempotency_key=mail.idempotency_key,
    )
    assert (again.id, again.replayed) == (mail.id, True)
    assert api.get_notification(mail.id).send_at == later.replace(
        microsecond=later.microsecond // 1000 * 1000
    )
    assert api.cancel_notification(mail.id).status == "cancelled"

    rows: list[nc.Recipient] = [
        {"to": f"r{i}@example.com", "reference": f"u-{i}"} for i in range(3)
    ]
    batch = api.send_batch(rows, subject="News", text="x", send_at=later, reference="n-1")
    assert (batch.status, batch.total) == ("scheduled", 3)
    assert api.get_batch(batch.id).reference == "n-1"
    assert [r.reference for r in api.batch_rows(batch.id)] == ["u-0", "u-1", "u-2"]
    assert api.cancel_batch(batch.id).status == "cancelled"

    text = api.send_sms("+8613800138000", text="€" * 81, reference="o-1")
    assert (text.status, text.replayed) == ("queued", False)
    shown = api.get_notification(text.id)
    assert (shown.kind, shown.segments, shown.reference) == ("sms", 2, "o-1")
    named = api.send_sms(
        "+8613800138000", template="shipped", data={"shop": "Acme", "order": "1"}, send_at=later
    )
    assert api.cancel_notification(named.id).status == "cancelled"
    texts: list[nc.SmsRecipient] = [{"to": "+8613800138000", "data": {"shop": "A", "order": "1"}}]
    sms_batch = api.send_sms_batch("shipped", texts, send_at=later, reference="s-1")
    assert (sms_batch.status, sms_batch.total) == ("scheduled", 1)
    assert api.get_batch(sms_batch.id).reference == "s-1"

    sms = api.send_sms_captcha("+8613800138000", "login", locale="en", client_ip="203.0.113.7")
    assert (sms.expires_in, sms.resend_after) == (300, 60)
    assert api.verify_sms_captcha("+8613800138000", "login", "000000").valid is False
    assert api.send_mail_captcha("ada@example.com", "login").status == "queued"
    verdict = api.verify_mail_captcha("ada@example.com", "login", "000000")
    # No worker here: the code was never sent, so there is none to match.
    assert (verdict.valid, verdict.reason, verdict.attempts_left) == (False, "expired", 0)

    token = api.qiniu_token("avatars", key="u/42.png", expires_in=600)
    assert token.bucket == "avatars" and token.expires_at > datetime.now(UTC)
    form = api.s3_form("avatars", key="u/42.png", content_type="image/png")
    assert form.fields["key"] == "u/42.png"
    for store in UPLOAD_STORES.keys() - {"qiniu"}:  # every store that answers a form
        form = api.upload_form(store, bucket(store), key="u/42.png", content_type="image/png")
        assert (form.bucket, form.fields["key"]) == (bucket(store), "u/42.png")

    assert api.get_suppression("gone@example.com") is None
    assert api.suppress("Gone@Example.com").address == "gone@example.com"
    assert [s.address for s in api.suppressions()] == ["gone@example.com"]
    assert api.get_suppression("gone@example.com") is not None
    assert api.unsuppress("gone@example.com").reason == "manual"
    odd = "/gone//./%?#@example.com"  # a valid address the path must carry whole
    assert api.suppress(odd).address == odd
    assert api.get_suppression(odd) is not None
    assert api.unsuppress(odd).address == odd

    spec = app.test_client().get("/openapi.json").get_json()
    keyed = {
        (method.upper(), path.replace("{", "<").replace("}", ">"))
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
        if operation.get("security") != []
    }
    assert ("POST", "/v1/mail") in keyed and ("GET", "/healthz") not in keyed
    served = {(m, re.sub(r"<\w+:", "<", rule)) for m, rule in called}
    assert keyed - served == set()


def test_errors_come_back_as_their_kind_with_the_fields_at_fault(api: nc.Client) -> None:
    with pytest.raises(nc.ValidationFailed) as invalid:
        api.send_mail(to=["not an address"], subject="Hi", text="x")
    assert [e.loc for e in invalid.value.errors] == [("body", "to", 0)]
    with pytest.raises(nc.NotFound):
        api.get_batch("no-such-batch")
    with pytest.raises(nc.Forbidden):
        api.qiniu_token("someone-elses-bucket")
    mail = api.send_mail(to=["ada@example.com"], subject="Hi", text="x")
    with pytest.raises(nc.Conflict) as late:
        api.cancel_notification(mail.id)
    assert late.value.status == 409 and "scheduled" in late.value.detail


def test_a_wrong_key_is_unauthorized(app: Flask) -> None:
    transport = httpx.WSGITransport(app=app)
    stranger = nc.Client("http://notifier.test", "ntf_wrong", transport=transport)
    with stranger, pytest.raises(nc.Unauthorized):
        stranger.get_notification("n1")

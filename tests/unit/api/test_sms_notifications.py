"""POST /v1/sms and POST /v1/sms/batch through the Flask app and a real Redis (no worker): what
is refused at the door, what is stored and what a worker will be given."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.batches import fan_out
from notifier.services.sms import OutgoingSms
from notifier.templating import Approved
from tests.support.harness.api import assert_problem, error_locs, queued_messages
from tests.support.harness.clients import api_clients, auth
from tests.support.harness.sms import DATA, cn_providers, templates_dir
from tests.support.peers import aliyun, tencent

CN, US = "+8613800138000", "+12025550143"


def post(client: FlaskClient, body: dict[str, Any], who: str = "tester", **headers: str) -> Any:
    return client.post("/v1/sms", json=body, headers={**auth(who), **headers})


def payload_of(app: Flask, notification_id: str) -> dict[str, Any]:
    rt: Runtime = app.extensions["notifier"]
    found = rt.store.payload(notification_id)
    assert found is not None
    return found


def test_a_text_is_stored_with_its_segments_and_queued_on_the_sms_lane(
    app: Flask, client: FlaskClient
) -> None:
    response = post(client, {"to": "+86 138 0013 8000", "text": "a" * 161, "reference": "o-1"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    (message,) = queued_messages(app, "sms")
    assert message["headers"]["task"] == "send_sms"
    assert message["headers"]["argsrepr"] == repr((body["id"],))
    assert "13800138000" not in json.dumps(message)  # the number stays in Redis
    shown = client.get(body["links"]["self"], headers=auth()).get_json()
    assert (shown["kind"], shown["segments"], shown["reference"]) == ("sms", 2, "o-1")
    assert "13800138000" not in json.dumps(shown)
    assert payload_of(app, body["id"]) == {
        "client": "tester", "to": CN, "template": None, "text": "a" * 161, "approved": {},
        "sender": {},
    }  # fmt: skip


@pytest.mark.parametrize(
    ("text", "segments"),
    [("a" * 160, 1), ("€" * 80, 1), ("€" * 81, 2), ("☺" + "a" * 69, 1), ("😀" + "a" * 69, 2)],
)
def test_the_record_counts_segments_as_twilio_does(
    client: FlaskClient, text: str, segments: int
) -> None:
    body = post(client, {"to": US, "text": text}).get_json()
    shown = client.get(body["links"]["self"], headers=auth()).get_json()
    assert shown["segments"] == segments


def test_a_named_sms_is_rendered_at_the_door(app: Flask, client: FlaskClient) -> None:
    body = post(client, {"to": US, "template": "shipped", "data": DATA}).get_json()
    sms = OutgoingSms.read(payload_of(app, body["id"]))
    assert (sms.text, sms.template, sms.approved) == (
        "Acme: your parcel 1234 ships today.", "shipped", {},
    )  # fmt: skip
    shown = client.get(body["links"]["self"], headers=auth()).get_json()
    assert shown["segments"] == 1


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"template": "shipped"}, ["body", "text"]),  # both
        ({"text": None}, ["body", "text"]),  # neither
        ({"text": "x" * 1601}, ["body", "text"]),
        # Twilio counts an emoji two (code 21617 past 1,600): 801 are 1,602.
        ({"text": "\U0001f600" * 801}, ["body", "text"]),
        (
            {"text": None, "template": "shipped", "data": {**DATA, "shop": "\U0001f600" * 800}},
            ["body", "data"],
        ),
        ({"text": ""}, ["body", "text"]),
        ({"to": "13800138000"}, ["body", "to"]),
        ({"text": None, "template": "nope"}, ["body", "template"]),
        ({"text": None, "template": "shipped", "data": {"shop": "Acme"}}, ["body", "data"]),
        (
            {"text": None, "template": "shipped", "data": {**DATA, "shop": "x" * 1600}},
            ["body", "data"],
        ),
        ({"send_at": (datetime.now(UTC) + timedelta(days=31)).isoformat()}, ["body", "send_at"]),
        ({"unknown": 1}, ["body", "unknown"]),
    ],
)
def test_a_bad_request_is_422_naming_the_field_and_nothing_is_queued(
    app: Flask, client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(post(client, {"to": CN, "text": "hi", **change}), 422)
    assert loc in error_locs(body)
    assert queued_messages(app) == []


def test_800_emoji_are_1600_characters_as_twilio_counts_and_go(client: FlaskClient) -> None:
    answer = post(client, {"to": CN, "text": "\U0001f600" * 800})
    assert answer.status_code == 202, answer.get_json()


def test_an_unknown_template_lists_the_known_ones(client: FlaskClient) -> None:
    body = assert_problem(post(client, {"to": CN, "template": "nope"}), 422)
    assert "shipped" in body["errors"][0]["msg"]


def test_the_sms_scope_is_required(client: FlaskClient) -> None:
    assert_problem(post(client, {"to": CN, "text": "hi"}, who="mailer"), 403)
    assert post(client, {"to": CN, "text": "hi"}, who="smser").status_code == 202


@pytest.fixture
def cn_app(make_settings: Callable[..., Settings], tmp_path: Path) -> Flask:
    """+86 served by Aliyun then Tencent only; the rest by the console. The named SMS of the
    operator's folder have the fakes' approved templates."""
    return create_app(
        make_settings(**cn_providers(), templates_dir=templates_dir(tmp_path / "templates"))
    )


def test_free_text_where_only_template_providers_serve_is_422_naming_text(
    cn_app: Flask,
) -> None:
    client = cn_app.test_client()
    body = assert_problem(post(client, {"to": CN, "text": "Your parcel ships today."}), 422)
    assert error_locs(body) == [["body", "text"]]
    assert "aliyun, tencent" in body["errors"][0]["msg"]
    assert queued_messages(cn_app) == []
    # Another country's providers send text.
    assert post(client, {"to": US, "text": "Your parcel ships today."}).status_code == 202


def test_a_named_sms_carries_each_providers_approved_template(cn_app: Flask) -> None:
    client = cn_app.test_client()
    body = post(client, {"to": CN, "template": "shipped", "data": DATA}).get_json()
    sms = OutgoingSms.read(payload_of(cn_app, body["id"]))
    assert sms.approved == {
        "aliyun": Approved(aliyun.SHIPPED, {"shop": "Acme", "order": "1234"}),
        "tencent": Approved(tencent.SHIPPED, ["Acme", "1234"]),
    }
    rt: Runtime = cn_app.extensions["notifier"]
    assert [sms.carried_by(p) for p in rt.sms_providers_for(CN)] == [True, True]
    # A named SMS with no text is carried by Aliyun alone, and counts no segments.
    only = post(client, {"to": CN, "template": "aliyun_only", "data": DATA}).get_json()
    sms = OutgoingSms.read(payload_of(cn_app, only["id"]))
    assert [sms.carried_by(p) for p in rt.sms_providers_for(CN)] == [True, False]
    shown = client.get(only["links"]["self"], headers=auth()).get_json()
    assert shown["segments"] is None


def test_a_named_sms_none_of_the_numbers_providers_can_send_is_422_naming_template(
    cn_app: Flask, tmp_path: Path
) -> None:
    (tmp_path / "templates" / "sms" / "text_only.toml").write_text('text = "Hi {{ shop }}"\n')
    app = create_app(cn_app.extensions["notifier"].settings)
    client = app.test_client()
    body = assert_problem(post(client, {"to": CN, "template": "text_only", "data": DATA}), 422)
    assert error_locs(body) == [["body", "template"]]
    assert "'text_only'" in body["errors"][0]["msg"]
    # Text-only is fine where a provider takes text, and aliyun_only is not.
    assert post(client, {"to": US, "template": "text_only", "data": DATA}).status_code == 202
    refused = assert_problem(post(client, {"to": US, "template": "aliyun_only", "data": DATA}), 422)
    assert error_locs(refused) == [["body", "template"]]
    assert queued_messages(app, "sms") != []


@pytest.mark.parametrize(
    ("to", "reason"), [(US, "country"), ("+44 70 1234 5678", "blocked_prefix")]
)
def test_the_fraud_guard_refuses_a_number_with_422_naming_to_and_counts_it(
    guarded: Flask, to: str, reason: str
) -> None:
    client = guarded.test_client()
    # Before anything else is looked at: this template does not even exist.
    body = assert_problem(post(client, {"to": to, "template": "nope"}), 422)
    assert error_locs(body) == [["body", "to"]]
    assert reason in body["errors"][0]["msg"]
    assert queued_messages(guarded) == []
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'notifier_sms_refused_total{{reason="{reason}"}} 1.0' in metrics
    assert post(client, {"to": CN, "text": "hi"}).status_code == 202


def test_a_scheduled_sms_waits_and_can_be_cancelled(app: Flask, client: FlaskClient) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    body = post(client, {"to": CN, "text": "hi", "send_at": later}).get_json()
    assert body["status"] == "scheduled"
    assert queued_messages(app) == []
    cancelled = client.delete(body["links"]["self"], headers=auth())
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"


def test_an_idempotency_key_answers_the_first_answer_again(app: Flask, client: FlaskClient) -> None:
    first = post(client, {"to": CN, "text": "hi"}, **{"Idempotency-Key": "k-1"})
    again = post(client, {"to": CN, "text": "hi"}, **{"Idempotency-Key": "k-1"})
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert len(queued_messages(app, "sms")) == 1
    assert_problem(post(client, {"to": CN, "text": "ho"}, **{"Idempotency-Key": "k-1"}), 409)


def sms_client(name: str, key: str, **entry: Any) -> dict[str, Any]:
    return {
        "client": name, "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
        "scopes": ["sms"], **entry,
    }  # fmt: skip


def test_a_clients_own_senders_and_test_mode_go_with_its_sms(
    make_settings: Callable[..., Settings],
) -> None:
    shop = sms_client("shop", "ntf_shop", sms_sender={"console": "Acme"})
    ci = sms_client("ci", "ntf_ci", mode="test")
    app = create_app(make_settings(api_keys=[*api_clients()[:1], shop, ci]))
    client = app.test_client()
    ids = []
    for key in ("ntf_shop", "ntf_ci"):
        response = client.post(
            "/v1/sms", json={"to": CN, "text": "hi"}, headers={"Authorization": f"Bearer {key}"}
        )
        assert response.status_code == 202
        ids.append(response.get_json()["id"])
    shop_sms, ci_sms = (payload_of(app, notification_id) for notification_id in ids)
    assert OutgoingSms.read(shop_sms).sender_for("console") == "Acme"
    assert OutgoingSms.read(shop_sms).sender_for("twilio") is None
    assert (shop_sms.get("test"), ci_sms.get("test")) == (None, True)


def post_batch(client: FlaskClient, rows: list[dict[str, Any]], **extra: Any) -> Any:
    body = {"template": "shipped", "recipients": rows, **extra}
    return client.post("/v1/sms/batch", json=body, headers=auth())


def test_an_sms_batch_fans_out_into_sms_on_the_bulk_lane(app: Flask, client: FlaskClient) -> None:
    rows = [
        {"to": CN, "data": DATA, "reference": "r-0"},
        {"to": US, "data": {"shop": "Acme", "order": "€" * 70}, "reference": "r-1"},
    ]
    response = post_batch(client, rows, reference="b-1")
    assert response.status_code == 202
    batch = response.get_json()
    assert (batch["status"], batch["total"]) == ("queued", 2)
    rt: Runtime = app.extensions["notifier"]
    with app.app_context():
        assert fan_out(batch["id"], store=rt.batches, queues=rt.row_queue_of) is False
    bulk = queued_messages(app, "bulk")
    assert [m["headers"]["task"] for m in bulk] == ["send_sms", "send_sms"]
    assert queued_messages(app, "sms", "mail") == []
    page = client.get(f"/v1/batches/{batch['id']}/notifications", headers=auth()).get_json()
    shown = [
        client.get(f"/v1/notifications/{i['id']}", headers=auth()).get_json() for i in page["items"]
    ]
    assert [(s["kind"], s["segments"], s["reference"]) for s in shown] == [
        ("sms", 1, "r-0"), ("sms", 2, "r-1"),
    ]  # fmt: skip
    # A row's payload is its number and data; the worker renders it with the batch's template.
    row = payload_of(app, shown[0]["id"])
    assert OutgoingSms.read(rt.row_texts.expand(row)) == OutgoingSms(
        CN, "Acme: your parcel 1234 ships today.", template="shipped"
    )
    assert client.get(f"/v1/batches/{batch['id']}", headers=auth()).get_json()["counts"] == {
        "queued": 2
    }


def test_an_sms_batch_is_cancelled_as_a_mail_batch_is(client: FlaskClient) -> None:
    batch = post_batch(client, [{"to": CN, "data": DATA}] * 3).get_json()
    cancelled = client.delete(f"/v1/batches/{batch['id']}", headers=auth())
    assert cancelled.status_code == 200
    assert cancelled.get_json()["counts"] == {"cancelled": 3}


def test_an_sms_batchs_bad_rows_are_named_by_index(guarded: Flask) -> None:
    client = guarded.test_client()
    rows = [
        {"to": CN, "data": DATA},
        {"to": US, "data": DATA},  # the fraud guard's
        {"to": CN, "data": {"shop": "Acme"}},  # no order
    ]
    body = assert_problem(post_batch(client, rows), 422)
    assert error_locs(body) == [
        ["body", "recipients", 1, "to"], ["body", "recipients", 2, "data"],
    ]  # fmt: skip
    assert queued_messages(guarded) == []
    assert_problem(post_batch(client, rows[:1], template="nope"), 422)
    no_template = client.post("/v1/sms/batch", json={"recipients": rows[:1]}, headers=auth())
    assert ["body", "template"] in error_locs(assert_problem(no_template, 422))


def test_a_batch_the_fraud_guard_refuses_counts_once_not_once_a_row(guarded: Flask) -> None:
    # 300 rows refused made 300 Redis calls and moved the counter by 300 for one request.
    client = guarded.test_client()
    assert_problem(post_batch(client, [{"to": US, "data": DATA}] * 300), 422)
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'notifier_sms_refused_total{reason="country"} 1.0' in metrics


def test_an_sms_batch_none_of_whose_providers_can_send_it_is_422_naming_template(
    cn_app: Flask,
) -> None:
    client = cn_app.test_client()
    rows = [{"to": US, "data": DATA}, {"to": CN, "data": DATA}, {"to": US, "data": DATA}]
    assert post_batch(client, rows).status_code == 202
    body = assert_problem(post_batch(client, rows, template="aliyun_only"), 422)
    assert error_locs(body) == [["body", "template"]]
    assert "2 rows (0, 2)" in body["errors"][0]["msg"]


def test_the_sms_batch_needs_the_sms_scope(client: FlaskClient) -> None:
    body = {"template": "shipped", "recipients": [{"to": CN, "data": DATA}]}
    assert_problem(client.post("/v1/sms/batch", json=body, headers=auth("mailer")), 403)

"""POST /v1/mail through the Flask app, a real Redis, and the broker queue (no worker)."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.embedded import free_port
from tests.support.harness.api import MAIL, assert_problem, error_locs, post, queued_messages
from tests.support.harness.clients import auth


def test_accepted_mail_is_stored_and_queued_by_id_only(app: Flask, client: FlaskClient) -> None:
    response = post(client, MAIL)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert body["links"] == {"self": f"/v1/notifications/{body['id']}"}
    assert response.headers["Location"] == body["links"]["self"]
    (message,) = queued_messages(app, "mail")
    assert message["headers"]["task"] == "send_mail"
    assert message["headers"]["argsrepr"] == repr((body["id"],))
    assert "ada@example.com" not in json.dumps(message)


def test_status_is_private_and_shows_no_recipients(client: FlaskClient) -> None:
    notification_id = post(client, MAIL).get_json()["id"]
    shown = client.get(f"/v1/notifications/{notification_id}", headers=auth())
    assert shown.status_code == 200
    view = shown.get_json()
    assert view["status"] == "queued"
    assert view["kind"] == "mail"
    assert view["attempts"] == 0
    assert set(view) == {
        "id", "kind", "status", "attempts", "provider", "error", "created_at", "updated_at", "send_at",
        "reference", "provider_ref",
    }  # fmt: skip
    assert "ada@example.com" not in shown.get_data(as_text=True)
    other = client.get(f"/v1/notifications/{notification_id}", headers=auth("smser"))
    assert_problem(other, 404)
    assert_problem(client.get("/v1/notifications/unknown", headers=auth()), 404)


@pytest.mark.parametrize("header", [None, "Bearer ntf_wrong", "Basic dXNlcjpwYXNz", "Bearer "])
def test_missing_or_unknown_key_is_401_alike(client: FlaskClient, header: str | None) -> None:
    headers = {"Authorization": header} if header else {}
    body = assert_problem(client.post("/v1/mail", json=MAIL, headers=headers), 401)
    assert body["detail"] == "a valid API key is required: Authorization: Bearer <key>"


def test_key_without_the_scope_is_403(client: FlaskClient) -> None:
    body = assert_problem(post(client, MAIL, who="smser"), 403)
    assert "mail" in body["detail"]


@pytest.mark.parametrize(
    "raw",
    [b"not json", b"[1, 2]", b'"text"', b"", b'{"to": [], "to": []}', b'{"subject": "\xff"}'],
)
def test_body_that_is_not_a_json_object_is_400(client: FlaskClient, raw: bytes) -> None:
    response = client.post(
        "/v1/mail", data=raw, headers={**auth(), "Content-Type": "application/json"}
    )
    assert_problem(response, 400)


@pytest.mark.parametrize("coded", [True, False])
def test_a_body_in_a_content_coding_is_400_naming_it(client: FlaskClient, coded: bool) -> None:
    """The service decodes no content coding: a gzipped body is refused saying so (not "not
    UTF-8"), and a plain one labelled gzip too, as its label says it is not JSON."""
    raw = json.dumps(MAIL).encode()
    headers = {**auth(), "Content-Type": "application/json", "Content-Encoding": "gzip"}
    answer = client.post("/v1/mail", data=gzip.compress(raw) if coded else raw, headers=headers)
    assert "Content-Encoding gzip" in assert_problem(answer, 400)["detail"]
    plain = {**headers, "Content-Encoding": "identity"}
    assert client.post("/v1/mail", data=raw, headers=plain).status_code == 202


def test_a_repeated_key_among_many_is_found_in_linear_time(client: FlaskClient) -> None:
    # Counting each key's repeats took seconds of CPU for 30,000 keys, a minute for 60,000:
    # any client's one request held a web worker.
    data = {f"k{n}": 0 for n in range(60_000)}
    raw = json.dumps({**MAIL, "data": data}).encode()[:-2] + b', "k59999": 1}}'
    started = time.process_time()
    answer = client.post(
        "/v1/mail", data=raw, headers={**auth(), "Content-Type": "application/json"}
    )
    assert "repeats the key 'k59999'" in assert_problem(answer, 400)["detail"]
    assert time.process_time() - started < 5  # 60 s and more counting each key's repeats


def test_body_over_the_limit_is_413(client: FlaskClient) -> None:
    big = {**MAIL, "text": "x" * (1024 * 1024)}
    assert_problem(post(client, big), 413)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"to": ["not-an-address"]}, ["body", "to", 0]),
        ({"cc": ["a@b"]}, ["body", "cc", 0]),
        ({"reply_to": "nobody"}, ["body", "reply_to"]),
        ({"to": []}, ["body", "to"]),
        (
            {
                "to": [f"u{i}@example.com" for i in range(30)],
                "bcc": [f"b{i}@example.com" for i in range(21)],
            },
            ["body", "to"],
        ),
        ({"subject": ""}, ["body", "subject"]),
        ({"subject": "a" * 999}, ["body", "subject"]),
        ({"subject": "Hi\r\nBcc: victim@example.com"}, ["body", "subject"]),
        ({"subject": None}, ["body", "subject"]),
        ({"text": None}, ["body", "text"]),
        ({"text": 5}, ["body", "text"]),
        ({"template": "../etc/passwd"}, ["body", "template"]),
        ({"template": "nope"}, ["body", "template"]),
        ({"template": "welcome", "data": {"name": "Ada"}}, ["body", "data"]),
        ({"send_at": "2030-01-01T10:00:00"}, ["body", "send_at"]),
        ({"send_at": "tomorrow"}, ["body", "send_at"]),
        # Not RFC 3339, though a date-time parser may read them: no seconds, no colon in the
        # offset, an underscore for the T.
        ({"send_at": "2030-01-01T10:00Z"}, ["body", "send_at"]),
        ({"send_at": "2030-01-01T10:00:00+0800"}, ["body", "send_at"]),
        ({"send_at": "2030-01-01_10:00:00Z"}, ["body", "send_at"]),
        ({"send_at": 1893456000}, ["body", "send_at"]),
        ({"send_at": (datetime.now(UTC) + timedelta(days=31)).isoformat()}, ["body", "send_at"]),
        ({"priority": "high"}, ["body", "priority"]),
    ],
)
def test_invalid_field_is_422_naming_it(
    app: Flask, client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(post(client, {**MAIL, **change}), 422)
    assert loc in error_locs(body)
    assert all(e["msg"] for e in body["errors"])
    assert queued_messages(app) == []


def test_template_fills_subject_and_escaped_html(app: Flask, client: FlaskClient) -> None:
    data = {"name": "<Ada>", "product": "Acme", "login_url": "https://a.example"}
    response = post(client, {"to": ["ada@example.com"], "template": "welcome", "data": data})
    assert response.status_code == 202
    payload = app.extensions["notifier"].store.payload(response.get_json()["id"])
    assert payload["subject"] == "Welcome to Acme, <Ada>"
    assert "&lt;Ada&gt;" in payload["html"]
    assert "<Ada>" in payload["text"]


def test_template_data_cannot_inject_headers(client: FlaskClient) -> None:
    """The subject the data broke is the data's fault, named as a batch names its row's: the
    request has no subject to name."""
    data = {"name": "x\r\nBcc: victim@example.com", "product": "Acme", "login_url": "u"}
    body = assert_problem(
        post(client, {"to": ["a@example.com"], "template": "welcome", "data": data}), 422
    )
    assert error_locs(body) == [["body", "data"]]


def test_scheduled_mail_waits_and_can_be_cancelled(app: Flask, client: FlaskClient) -> None:
    send_at = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = post(client, {**MAIL, "send_at": send_at})
    assert response.status_code == 202
    accepted = response.get_json()
    assert accepted["status"] == "scheduled"
    assert queued_messages(app) == []
    link = accepted["links"]["self"]
    assert client.get(link, headers=auth()).get_json()["send_at"] is not None
    cancelled = client.delete(link, headers=auth())
    assert cancelled.status_code == 200
    assert cancelled.get_json()["status"] == "cancelled"
    assert_problem(client.delete(link, headers=auth()), 409)
    assert app.extensions["notifier"].store.lease_due(now=time.time() + 7200, lease=1) == []


def test_cancel_of_a_queued_mail_is_409(client: FlaskClient) -> None:
    link = post(client, MAIL).get_json()["links"]["self"]
    body = assert_problem(client.delete(link, headers=auth()), 409)
    assert "queued" in body["detail"]


@pytest.mark.parametrize(
    "form", ["%Y-%m-%dT%H:%M:%SZ", "%Y-%m-%d %H:%M:%S.5+08:00", "%Y-%m-%dt%H:%M:%Sz"]
)
def test_send_at_takes_each_form_rfc_3339_allows(client: FlaskClient, form: str) -> None:
    """A space for the T (RFC 3339's note), a fraction, lower-case t and z."""
    send_at = (datetime.now(UTC) + timedelta(days=1)).strftime(form)
    assert post(client, {**MAIL, "send_at": send_at}).get_json()["status"] == "scheduled"


def test_send_at_in_the_past_sends_now(app: Flask, client: FlaskClient) -> None:
    response = post(client, {**MAIL, "send_at": "2020-01-01T00:00:00Z"})
    assert response.get_json()["status"] == "queued"
    assert len(queued_messages(app)) == 1


def test_options_is_204_with_the_routes_methods(client: FlaskClient) -> None:
    """No empty page that says it is HTML: JSON in and out, and nothing here."""
    answer = client.options("/v1/mail")
    assert (answer.status_code, answer.get_data()) == (204, b"")
    assert "Content-Type" not in answer.headers
    assert set(answer.headers["Allow"].split(", ")) == {"OPTIONS", "POST"}


def test_unknown_route_and_method_are_problems(client: FlaskClient) -> None:
    assert_problem(client.get("/v2/nothing"), 404)
    response = client.get("/v1/mail", headers=auth())
    assert_problem(response, 405)
    assert "POST" in response.headers["Allow"]


def test_redis_down_is_503_quickly(make_settings: Callable[..., Settings]) -> None:
    dead = f"redis://127.0.0.1:{free_port()}/0"
    client = create_app(make_settings(redis_url=dead)).test_client()
    started = time.monotonic()
    body = assert_problem(post(client, MAIL), 503)
    assert time.monotonic() - started < 5
    assert "nothing was accepted" in body["detail"]


def test_broker_down_is_503_and_nothing_is_kept(
    make_settings: Callable[..., Settings], redis_server: Any
) -> None:
    app = create_app(make_settings(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    started = time.monotonic()
    assert_problem(post(app.test_client(), MAIL), 503)
    assert time.monotonic() - started < 5
    db = redis.Redis.from_url(redis_server.url(1))
    assert db.keys("notifier:{*}:n:*") + db.keys("notifier:{*}:p:*") == []


def test_health_and_readiness(
    app: Flask, client: FlaskClient, make_settings: Callable[..., Settings]
) -> None:
    assert client.get("/healthz").get_json() == {"status": "ok"}
    assert client.get("/readyz").status_code == 200
    dead = create_app(make_settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    body = assert_problem(dead.test_client().get("/readyz"), 503)
    assert "redis" in body["detail"] and "broker" in body["detail"]


def test_an_unexpected_error_is_a_plain_500_that_leaks_nothing(
    app: Flask,
    client: FlaskClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("password=hunter2 in /srv/notifier/secret.py")

    monkeypatch.setattr(app.extensions["notifier"].store, "create", broken)
    response = client.post("/v1/mail", json=MAIL, headers=auth())
    body = assert_problem(response, 500)
    assert body["detail"] == "an unexpected error occurred; it has been logged"
    text = response.get_data(as_text=True)
    assert "hunter2" not in text and "Traceback" not in text and ".py" not in text
    assert "hunter2" in caplog.text  # the operator still sees what happened


def test_readiness_names_a_separate_broker_that_is_down(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(broker_url=f"redis://127.0.0.1:{free_port()}/0"))
    body = assert_problem(app.test_client().get("/readyz"), 503)
    assert body["detail"] == "not reachable: broker"

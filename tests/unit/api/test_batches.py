"""POST /v1/mail/batch and /v1/batches/<id> through the Flask app and a real Redis (no worker)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.batches import fan_out
from tests.support.harness.api import assert_problem, error_locs, queued_messages
from tests.support.harness.batches import rows
from tests.support.harness.clients import auth


def post_batch(client: FlaskClient, n: int, **extra: object) -> TestResponse:
    body = {"template": "welcome", "recipients": rows(n, "unit"), **extra}
    return client.post("/v1/mail/batch", json=body, headers=auth())


def test_a_batch_is_stored_and_its_fan_out_queued_on_the_batch_lane(
    app: Flask, client: FlaskClient
) -> None:
    response = post_batch(client, 3, reference="run-1")
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["total"]) == ("queued", 3)
    assert response.headers["Location"] == f"/v1/batches/{body['id']}"
    (message,) = queued_messages(app, "batch")
    assert message["headers"]["task"] == "fan_out_batch"
    assert queued_messages(app, "mail", "bulk") == []
    shown = client.get(f"/v1/batches/{body['id']}", headers=auth()).get_json()
    assert (shown["status"], shown["counts"], shown["reference"]) == (
        "queued",
        {"queued": 3},
        "run-1",
    )
    # Rows not fanned out yet page with the batch's status and their own references.
    page = client.get(f"/v1/batches/{body['id']}/notifications", headers=auth()).get_json()
    assert [(i["status"], i["reference"]) for i in page["items"]] == [
        ("queued", "row-0"), ("queued", "row-1"), ("queued", "row-2"),
    ]  # fmt: skip
    assert page["next"] is None


def test_fan_out_makes_each_row_once_and_queues_its_mail_on_the_bulk_lane(
    app: Flask, client: FlaskClient
) -> None:
    body = post_batch(client, 1200).get_json()
    rt: Runtime = app.extensions["notifier"]
    with app.app_context():
        assert fan_out(body["id"], store=rt.batches, queues=rt.row_queue_of, chunks=2) is True
        assert len(queued_messages(app, "bulk")) == 1000
        assert fan_out(body["id"], store=rt.batches, queues=rt.row_queue_of) is False
        # Again: a no-op.
        assert fan_out(body["id"], store=rt.batches, queues=rt.row_queue_of) is False
    bulk = queued_messages(app, "bulk")
    assert len(bulk) == 1200
    assert len({m["headers"]["argsrepr"] for m in bulk}) == 1200
    assert all(m["headers"]["task"] == "send_mail" for m in bulk)
    page = client.get(f"/v1/batches/{body['id']}/notifications", headers=auth()).get_json()
    first = page["items"][0]
    assert (
        client.get(f"/v1/notifications/{first['id']}", headers=auth()).get_json()["reference"]
        == "row-0"
    )


def test_over_the_pending_allowance_is_429_and_nothing_is_stored(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(make_settings(batch_max_pending=5))
    client = app.test_client()
    assert post_batch(client, 4).status_code == 202
    refused = post_batch(client, 2)
    body = assert_problem(refused, 429)
    assert refused.headers["Retry-After"] == "60"
    assert "5 rows" in body["detail"]
    assert len(queued_messages(app, "batch")) == 1
    assert post_batch(client, 1).status_code == 202


def test_bad_rows_are_named_by_index_and_10001_rows_are_too_many(client: FlaskClient) -> None:
    recipients = rows(20, "bad")
    del recipients[4]["data"]["name"]
    del recipients[11]["data"]["name"]
    body = {"template": "welcome", "recipients": recipients}
    problem = assert_problem(client.post("/v1/mail/batch", json=body, headers=auth()), 422)
    assert [loc[:4] for loc in error_locs(problem)] == [
        ["body", "recipients", 4, "data"], ["body", "recipients", 11, "data"],
    ]  # fmt: skip
    assert problem["detail"].startswith("2 of 20 rows")
    unknown = {"template": "nope", "recipients": rows(2, "x")}
    problem = assert_problem(client.post("/v1/mail/batch", json=unknown, headers=auth()), 422)
    assert error_locs(problem) == [["body", "template"]]
    many = {"subject": "S", "text": "T", "recipients": [{"to": "a@example.com"}] * 10_001}
    problem = assert_problem(client.post("/v1/mail/batch", json=many, headers=auth()), 422)
    assert error_locs(problem) == [["body", "recipients"]]


def test_a_row_whose_data_the_template_cannot_compute_with_is_named_not_a_500(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    # '{{ price | round(2) }}' of the text "2.5" is a TypeError in Jinja: it was a 500 for the
    # whole batch, no row named.
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "invoice.txt").write_text("Total: {{ price | round(2) }}")
    (tmp_path / "mail" / "invoice.subject.txt").write_text("Your invoice")
    client = create_app(make_settings(templates_dir=tmp_path)).test_client()
    recipients = [
        {"to": "a@example.com", "data": {"price": 2.5}},
        {"to": "b@example.com", "data": {"price": "2.5"}},
    ]
    body = {"template": "invoice", "recipients": recipients}
    problem = assert_problem(client.post("/v1/mail/batch", json=body, headers=auth()), 422)
    assert [loc[:4] for loc in error_locs(problem)] == [["body", "recipients", 1, "data"]]
    assert "TypeError" in json.dumps(problem)


def test_a_batch_body_may_be_larger_than_a_mails(client: FlaskClient) -> None:
    recipients = rows(10_000, "big")
    for row in recipients:
        row["data"]["login_url"] += "x" * 100
    body = {"template": "welcome", "recipients": recipients}
    response = client.post("/v1/mail/batch", json=body, headers=auth())
    assert response.status_code == 202, response.get_data(as_text=True)
    mail = {"to": ["a@example.com"], "subject": "S", "text": "x" * (2 * 1024 * 1024)}
    assert_problem(client.post("/v1/mail", json=mail, headers=auth()), 413)


def test_a_cursor_or_status_that_is_not_one_is_422(client: FlaskClient) -> None:
    batch_id = post_batch(client, 1).get_json()["id"]
    for query, name in (("status=lost", "status"), ("cursor=-1", "cursor"), ("cursor=x", "cursor")):
        answer = client.get(f"/v1/batches/{batch_id}/notifications?{query}", headers=auth())
        assert error_locs(assert_problem(answer, 422)) == [["query", name]]
    assert_problem(client.get("/v1/batches/" + "9" * 65, headers=auth()), 404)


def test_checking_rows_gives_the_webs_other_requests_turns_and_keeps_what_it_is_asked_to(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Under the web's gevent, time.sleep(0) is a turn for the other greenlets (a login's code):
    # 10,000 rows of a large template held them up for seconds, and kept half a gigabyte.
    from notifier.services import batches

    turns: list[float] = []
    monkeypatch.setattr("notifier.services.batches.time.sleep", turns.append)
    assert batches.check_rows(list(range(250)), lambda i, row: row * 2, keep=False) == []
    assert turns == [0, 0]  # after rows 100 and 200
    assert batches.check_rows([1, 2], lambda i, row: row * 2) == [2, 4]

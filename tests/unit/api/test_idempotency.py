"""Idempotency-Key on the sending routes (Flask app, real Redis, no worker)."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.harness.api import MAIL, assert_problem, error_locs, queued_messages
from tests.support.harness.clients import auth


def post(
    client: FlaskClient, body: Any, key: str, who: str = "tester", path: str = "/v1/mail"
) -> Any:
    return client.post(path, json=body, headers={**auth(who), "Idempotency-Key": key})


def test_same_key_and_body_replay_the_first_answer(app: Flask, client: FlaskClient) -> None:
    first = post(client, MAIL, "order-42")
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    # The same JSON with other spacing and key order is the same body.
    again = client.post(
        "/v1/mail",
        data='{"text": "Thanks.",   "subject": "Your receipt", "to": ["ada@example.com"]}',
        headers={**auth(), "Idempotency-Key": "order-42", "Content-Type": "application/json"},
    )
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(queued_messages(app)) == 1


def test_same_key_with_another_body_is_409(client: FlaskClient) -> None:
    post(client, MAIL, "order-43")
    body = assert_problem(post(client, {**MAIL, "subject": "Other"}, "order-43"), 409)
    assert "Idempotency-Key" in body["detail"]
    assert_problem(
        post(
            client, {"phone": "+8613800138000", "purpose": "x"}, "order-43", path="/v1/sms/captcha"
        ),
        409,
    )


def test_keys_belong_to_their_client(app: Flask, client: FlaskClient) -> None:
    mine = post(client, MAIL, "shared").get_json()
    theirs = post(client, MAIL, "shared", who="mailer").get_json()
    assert mine["id"] != theirs["id"]
    assert len(queued_messages(app)) == 2


def test_a_refused_request_does_not_hold_the_key(app: Flask, client: FlaskClient) -> None:
    assert_problem(post(client, {**MAIL, "to": []}, "retry-me"), 422)
    assert post(client, {**MAIL, "to": []}, "retry-me").status_code == 422
    assert post(client, MAIL, "retry-me").status_code == 202


def test_captcha_send_replays_without_hitting_the_resend_limit(client: FlaskClient) -> None:
    body = {"phone": "+8613800138000", "purpose": "login"}
    first = post(client, body, "login-1", path="/v1/sms/captcha")
    again = post(client, body, "login-1", path="/v1/sms/captcha")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["resend_after"] == 60


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there"])
def test_invalid_key_is_422_naming_the_header(client: FlaskClient, key: str) -> None:
    response = client.post(
        "/v1/mail", json=MAIL, headers={**auth(), "Idempotency-Key": key.encode().decode("latin-1")}
    )
    body = assert_problem(response, 422)
    assert error_locs(body) == [["header", "Idempotency-Key"]]

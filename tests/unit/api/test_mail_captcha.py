"""``POST /v1/mail/captcha`` and ``/verify`` through the Flask app and a real Redis (no worker)."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from notifier.runtime import Runtime
from notifier.tasks.schedule import LOST_AFTER, requeue_lost
from tests.support.harness.api import assert_problem, error_locs, queued_messages
from tests.support.harness.clients import auth

SEND = {"to": "ada@example.com", "purpose": "login", "locale": "en", "client_ip": "203.0.113.7"}


def post(client: FlaskClient, path: str, body: Any, who: str = "tester") -> Any:
    return client.post(path, json=body, headers=auth(who))


def test_a_send_is_a_mail_on_the_captcha_lane(app: Flask, client: FlaskClient) -> None:
    response = post(client, "/v1/mail/captcha", SEND, who="mailer")
    assert response.status_code == 202
    body = response.get_json()
    assert (body["status"], body["expires_in"], body["resend_after"]) == ("queued", 300, 60)
    (message,) = queued_messages(app, "captcha")
    assert message["headers"]["task"] == "send_mail_captcha"
    assert "ada@" not in json.dumps(message)  # the message carries the id alone
    shown = client.get(body["links"]["self"], headers=auth("mailer")).get_json()
    assert shown["kind"] == "mail"  # the contract's kinds: a code by mail is a mail
    assert "ada@" not in json.dumps(shown)


def test_the_same_address_in_another_case_of_domain_is_429(client: FlaskClient) -> None:
    assert post(client, "/v1/mail/captcha", SEND).status_code == 202
    again = post(client, "/v1/mail/captcha", {**SEND, "to": "ada@EXAMPLE.com"})
    assert_problem(again, 429)
    assert 1 <= int(again.headers["Retry-After"]) <= 60
    # The limits count the mailbox: its case and +tag variants are not new allowances.
    for variant in ("Ada@example.com", "ada+x@example.com"):
        assert_problem(post(client, "/v1/mail/captcha", {**SEND, "to": variant}), 429)
    assert post(client, "/v1/mail/captcha", {**SEND, "to": "grace@example.com"}).status_code == 202


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"to": "not an address"}, ["body", "to"]),
        ({"to": ["ada@example.com"]}, ["body", "to"]),
        ({"to": "ada@example.com\r\nBcc: eve@example.com"}, ["body", "to"]),
        ({"purpose": "Log In"}, ["body", "purpose"]),
        ({"locale": "fr"}, ["body", "locale"]),
        ({"client_ip": "300.1.1.1"}, ["body", "client_ip"]),
        ({"phone": "+8613800138000"}, ["body", "phone"]),
    ],
)
def test_an_invalid_send_is_422_naming_the_field(
    client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(post(client, "/v1/mail/captcha", {**SEND, **change}), 422)
    assert loc in error_locs(body)


def test_the_mail_scope_is_required(client: FlaskClient) -> None:
    assert_problem(post(client, "/v1/mail/captcha", SEND, who="smser"), 403)
    verify = {"to": SEND["to"], "purpose": "login", "code": "1"}
    assert_problem(post(client, "/v1/mail/captcha/verify", verify, who="smser"), 403)


def test_verify_without_a_code_sent_and_with_a_bad_body(client: FlaskClient) -> None:
    body = {"to": "ada@example.com", "purpose": "login", "code": "123456"}
    answer = post(client, "/v1/mail/captcha/verify", body)
    assert (answer.status_code, answer.get_json()) == (
        200,
        {"valid": False, "reason": "expired", "attempts_left": 0},
    )
    bad = assert_problem(
        post(client, "/v1/mail/captcha/verify", {"to": "x", "purpose": "login"}), 422
    )
    assert ["body", "to"] in error_locs(bad) and ["body", "code"] in error_locs(bad)


def test_an_idempotency_key_answers_the_first_answer_again(client: FlaskClient) -> None:
    headers = {**auth(), "Idempotency-Key": "login-42"}
    first = client.post("/v1/mail/captcha", json=SEND, headers=headers)
    again = client.post("/v1/mail/captcha", json=SEND, headers=headers)
    assert (first.status_code, again.status_code) == (202, 202)
    assert first.get_json()["id"] == again.get_json()["id"]


def test_the_routes_are_in_the_openapi_document(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    send = paths["/v1/mail/captcha"]["post"]
    assert send["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/MailCaptchaRequest"
    )
    assert {"202", "429"} <= set(send["responses"])
    assert "200" in paths["/v1/mail/captcha/verify"]["post"]["responses"]


def test_a_mail_captcha_whose_message_was_lost_goes_back_on_the_captcha_lane(
    app: Flask, client: FlaskClient
) -> None:
    rt: Runtime = app.extensions["notifier"]
    assert post(client, "/v1/mail/captcha", SEND).status_code == 202
    rt.redis.delete("captcha")  # the message lost (a failover between BRPOP and the worker)
    assert requeue_lost(rt, now=time.time() + LOST_AFTER + 1) == 1
    (message,) = queued_messages(app, "captcha")
    assert message["headers"]["task"] == "send_mail_captcha"

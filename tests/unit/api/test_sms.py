"""The captcha routes through the Flask app and a real Redis (no worker)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from tests.support.harness.api import assert_problem, error_locs, queued_messages
from tests.support.harness.clients import auth

SEND = {
    "phone": "+86 138 0013 8000",
    "purpose": "login",
    "locale": "en",
    "client_ip": "203.0.113.7",
}


def post(client: FlaskClient, path: str, body: Any, who: str = "tester") -> Any:
    return client.post(path, json=body, headers=auth(who))


def test_send_is_accepted_with_its_timing(app: Flask, client: FlaskClient) -> None:
    response = post(client, "/v1/sms/captcha", SEND)
    assert response.status_code == 202
    body = response.get_json()
    assert body["status"] == "queued"
    assert (body["expires_in"], body["resend_after"]) == (300, 60)
    assert body["links"]["self"] == f"/v1/notifications/{body['id']}"
    (message,) = queued_messages(app, "captcha")
    assert message["headers"]["task"] == "send_sms_captcha"
    # The message expires with its code: a worker never sends a code that is already dead.
    expires = datetime.fromisoformat(message["headers"]["expires"])
    assert 295 < expires.timestamp() - time.time() <= 300
    assert "13800138000" not in json.dumps(message)
    shown = client.get(body["links"]["self"], headers=auth()).get_json()
    assert shown["kind"] == "sms_captcha"
    assert "13800138000" not in json.dumps(shown)


def test_second_send_inside_the_interval_is_429(client: FlaskClient) -> None:
    assert post(client, "/v1/sms/captcha", SEND).status_code == 202
    # The same phone written another way is the same phone.
    again = post(client, "/v1/sms/captcha", {**SEND, "phone": "+8613800138000"})
    assert_problem(again, 429)
    assert 1 <= int(again.headers["Retry-After"]) <= 60


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"phone": "13800138000"}, ["body", "phone"]),
        ({"phone": "+86 123"}, ["body", "phone"]),
        ({"phone": "+1 555 0100 9999 9999 9999"}, ["body", "phone"]),
        ({"purpose": "Log In"}, ["body", "purpose"]),
        ({"purpose": "x" * 33}, ["body", "purpose"]),
        ({"locale": "fr"}, ["body", "locale"]),
        ({"client_ip": "300.1.1.1"}, ["body", "client_ip"]),
        ({"code": "123456"}, ["body", "code"]),
    ],
)
def test_invalid_send_is_422_naming_the_field(
    client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(post(client, "/v1/sms/captcha", {**SEND, **change}), 422)
    assert loc in error_locs(body)


def test_scope_is_required(client: FlaskClient) -> None:
    assert_problem(post(client, "/v1/sms/captcha", SEND, who="mailer"), 403)
    assert_problem(post(client, "/v1/sms/captcha/verify", {**SEND, "code": "1"}, who="mailer"), 403)


def test_verify_without_a_code_sent(client: FlaskClient) -> None:
    body = {"phone": "+8613800138000", "purpose": "login", "code": "123456"}
    response = post(client, "/v1/sms/captcha/verify", body)
    assert response.status_code == 200
    assert response.get_json() == {"valid": False, "reason": "expired", "attempts_left": 0}


def test_verify_validates_its_body(client: FlaskClient) -> None:
    body = assert_problem(
        post(client, "/v1/sms/captcha/verify", {"phone": "x", "purpose": "login"}), 422
    )
    assert ["body", "phone"] in error_locs(body)
    assert ["body", "code"] in error_locs(body)


@pytest.mark.parametrize(
    ("phone", "reason"),
    [("+1 202 555 0143", "country"), ("+44 70 1234 5678", "blocked_prefix")],
)
def test_the_fraud_guard_refuses_a_number_with_422_naming_phone_and_counts_it(
    guarded: Flask, phone: str, reason: str
) -> None:
    client = guarded.test_client()
    body = assert_problem(post(client, "/v1/sms/captcha", {**SEND, "phone": phone}), 422)
    assert error_locs(body) == [["body", "phone"]]
    assert reason in body["errors"][0]["msg"]
    assert queued_messages(guarded, "captcha") == []  # nothing stored or queued for a provider
    metrics = client.get("/metrics").get_data(as_text=True)
    assert f'notifier_sms_refused_total{{reason="{reason}"}} 1.0' in metrics
    # The refusal took no limit: an allowed number right after is sent.
    allowed = post(client, "/v1/sms/captcha", {**SEND, "phone": "+44 7400 123456"})
    assert allowed.status_code == 202
    assert post(client, "/v1/sms/captcha", SEND).status_code == 202  # China is allowed too


def test_a_phones_daily_limit_is_each_clients_under_a_ceiling_for_all(
    make_settings: Callable[..., Settings],
) -> None:
    app = create_app(
        make_settings(
            captcha_daily_limit=2, captcha_phone_daily_ceiling=3, captcha_resend_interval=0
        )
    )
    client = app.test_client()
    for _ in range(2):
        assert post(client, "/v1/sms/captcha", SEND).status_code == 202
    spent = assert_problem(post(client, "/v1/sms/captcha", SEND), 429)
    assert "daily limit" in spent["detail"]
    # Another client's allowance for the phone is its own...
    assert post(client, "/v1/sms/captcha", SEND, who="smser").status_code == 202
    # ...up to the ceiling for every client together.
    ceiling = assert_problem(post(client, "/v1/sms/captcha", SEND, who="smser"), 429)
    assert "phone daily ceiling" in ceiling["detail"]
    assert len(queued_messages(app, "captcha")) == 3


def test_behind_one_nat_each_client_has_its_own_hourly_codes_under_a_ceiling(
    make_settings: Callable[..., Settings],
) -> None:
    """The shop's users spend the shop's codes for their office's address, by SMS and by mail
    alike; the bank's users behind the same address still get theirs, until every client's
    together reach the address's ceiling."""
    app = create_app(make_settings(captcha_ip_hourly_limit=2, captcha_ip_hourly_ceiling=3))
    client = app.test_client()

    def code(who: str, n: int, channel: str = "sms") -> Any:
        # The office's users: an IPv6 /64 counts as one address.
        ask = {"purpose": "login", "client_ip": f"2001:db8:7::{n + 1:x}"}
        if channel == "sms":
            return post(client, "/v1/sms/captcha", {**ask, "phone": f"+861380013800{n}"}, who)
        return post(client, "/v1/mail/captcha", {**ask, "to": f"user{n}@example.com"}, who)

    assert code("shop", 1).status_code == 202
    assert code("shop", 2, "mail").status_code == 202
    spent = assert_problem(code("shop", 3), 429)
    assert "captcha ip limit reached" in spent["detail"]
    assert code("bank", 4, "mail").status_code == 202
    ceiling = assert_problem(code("tester", 5), 429)
    assert "captcha ip hourly ceiling reached" in ceiling["detail"]
    assert code("tester", 6, "mail").status_code == 429
    assert post(client, "/v1/sms/captcha", {**SEND, "client_ip": "203.0.113.9"}).status_code == 202

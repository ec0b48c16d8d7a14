"""POST /v1/uploads/qiniu/token: tokens checked by recomputing their HMAC and decoding them."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask.testing import FlaskClient
from pydantic import SecretStr

from config import Settings
from notifier import create_app
from notifier.providers.qiniu import QiniuSettings, QiniuTokens
from tests.support.harness.api import FULL, assert_problem, error_locs
from tests.support.harness.clients import QINIU, auth
from tests.support.peers.qiniu import check_token


def mint(client: FlaskClient, body: dict[str, Any], who: str = "tester") -> Any:
    return client.post("/v1/uploads/qiniu/token", json=body, headers=auth(who))


def policy_of(answer: dict[str, Any]) -> dict[str, Any]:
    return check_token(
        answer["token"], access_key=QINIU["qiniu_access_key"], secret_key=QINIU["qiniu_secret_key"]
    )


def test_every_policy_field_is_in_the_signed_token(client: FlaskClient) -> None:
    before = int(time.time())
    response = mint(client, FULL)
    assert response.status_code == 200
    answer = response.get_json()
    assert set(answer) == {"token", "bucket", "key", "expires_at", "upload_url"}
    assert (answer["bucket"], answer["key"]) == ("avatars", "u/42.png")
    assert answer["upload_url"] == "https://upload.qiniup.com"
    policy = policy_of(answer)
    deadline = policy.pop("deadline")
    assert isinstance(deadline, int) and before + 3600 <= deadline <= int(time.time()) + 3600
    assert datetime.fromisoformat(answer["expires_at"]).timestamp() == deadline
    assert policy == {
        "scope": "avatars:u/42.png",
        "insertOnly": 1,
        "fsizeLimit": 5242880,
        "mimeLimit": "image/*",
        "callbackUrl": "https://app.example/qiniu/callback",
        "callbackBody": "key=$(key)&hash=$(etag)",
        "returnBody": '{"key": "$(key)"}',
    }


def test_a_bucket_wide_token_has_only_scope_and_deadline(client: FlaskClient) -> None:
    answer = mint(client, {"bucket": "avatars", "expires_in": 60}).get_json()
    policy = policy_of(answer)
    assert set(policy) == {"scope", "deadline"}
    assert policy["scope"] == "avatars"
    assert answer["key"] is None


def test_prefix_scope(client: FlaskClient) -> None:
    answer = mint(client, {"bucket": "avatars", "key_prefix": "u/42/"}).get_json()
    policy = policy_of(answer)
    assert (policy["scope"], policy["isPrefixalScope"]) == ("avatars:u/42/", 1)
    # A form without a key: Qiniu names the file by the prefix and its name.
    assert policy["saveKey"] == "u/42/$(fname)"
    assert answer["key"] is None


def test_bucket_not_allowed_is_403(client: FlaskClient) -> None:
    body = assert_problem(mint(client, {**FULL, "bucket": "invoices"}), 403)
    assert "invoices" in body["detail"]


def test_scope_upload_is_required(client: FlaskClient) -> None:
    assert_problem(mint(client, FULL, who="mailer"), 403)


def test_a_confined_client_stays_under_its_prefix(client: FlaskClient) -> None:
    assert_problem(mint(client, {"bucket": "avatars", "key": "u/42.png"}, who="uploader"), 403)
    assert_problem(mint(client, {"bucket": "avatars", "key_prefix": "u/"}, who="uploader"), 403)
    inside = mint(client, {"bucket": "avatars", "key": "u/uploader/1.png"}, who="uploader")
    assert policy_of(inside.get_json())["scope"] == "avatars:u/uploader/1.png"
    default = policy_of(mint(client, {"bucket": "avatars"}, who="uploader").get_json())
    assert (default["scope"], default["isPrefixalScope"]) == ("avatars:u/uploader/", 1)


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"key_prefix": "u/"}, ["body", "key_prefix"]),
        ({"key": "é" * 376}, ["body", "key"]),
        ({"key": ""}, ["body", "key"]),
        ({"expires_in": 59}, ["body", "expires_in"]),
        ({"expires_in": 86401}, ["body", "expires_in"]),
        ({"expires_in": "3600"}, ["body", "expires_in"]),
        ({"insert_only": "true"}, ["body", "insert_only"]),
        ({"fsize_limit": 0}, ["body", "fsize_limit"]),
        ({"fsize_limit": 1e300}, ["body", "fsize_limit"]),  # past an int64: Qiniu refuses it
        ({"fsize_limit": 2**63}, ["body", "fsize_limit"]),
        ({"callback_url": "ftp://x"}, ["body", "callback_url"]),
        ({"callback_url": None}, ["body", "callback_url"]),
        ({"callback_body": None}, ["body", "callback_body"]),
        ({"bucket": "bad bucket"}, ["body", "bucket"]),
        ({"policy": {"persistentOps": "x"}}, ["body", "policy"]),
    ],
)
def test_invalid_field_is_422_naming_it(
    client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(mint(client, {**FULL, **change}), 422)
    assert loc in error_locs(body)


def production(make_settings: Callable[..., Settings], **overrides: Any) -> FlaskClient:
    settings = make_settings(
        env="production",
        sms_providers=["console"],
        mail_provider="outbox",  # (the tests' `memory` stops a production start)
        captcha_secret="0" * 32,
        s3_endpoint_url="https://s3.example",
        oss_endpoint="https://oss.example",
        cos_endpoint="https://cos.example",
        **overrides,
    )
    return create_app(settings).test_client()


def test_plain_http_callback_is_422_in_production(make_settings: Callable[..., Settings]) -> None:
    client = production(make_settings)
    body = assert_problem(mint(client, {**FULL, "callback_url": "http://app.example/cb"}), 422)
    assert error_locs(body) == [["body", "callback_url"]]
    assert mint(client, FULL).status_code == 200


@pytest.mark.parametrize(
    ("callback_url", "why"),
    [
        # Qiniu reads ";" as a list of fallbacks, each called in turn: each is held to the rule.
        ("https://a.example/cb;http://b.example/cb", "must be https:// in production"),
        ("https://a.example/cb;https://10.0.0.7/cb", "private, loopback or link-local"),
        ("https://127.0.0.1/cb", "private, loopback or link-local"),
        ("https://a.example/cb;https://localhost/cb", "private, loopback or link-local"),
        ("https://a.example/cb;https://[::1]/cb", "private, loopback or link-local"),
        ("https://[::1/cb", "not an http(s) URL with a host"),
        ("https://a.example/cb;https://:443/cb", "not an http(s) URL with a host"),
    ],
)
def test_every_callback_url_qiniu_would_call_is_checked_in_production(
    make_settings: Callable[..., Settings], callback_url: str, why: str
) -> None:
    client = production(make_settings)
    body = assert_problem(mint(client, {**FULL, "callback_url": callback_url}), 422)
    assert error_locs(body) == [["body", "callback_url"]]
    assert why in body["errors"][0]["msg"]


def test_a_list_of_callback_urls_is_signed_as_given(make_settings: Callable[..., Settings]) -> None:
    fallbacks = "https://a.example/cb;https://b.example/cb"
    answer = mint(production(make_settings), {**FULL, "callback_url": fallbacks})
    assert answer.status_code == 200, answer.get_json()
    assert policy_of(answer.get_json())["callbackUrl"] == fallbacks


@pytest.mark.parametrize(
    "callback_url",
    ["https://a.example/cb;", "https://a.example/cb;b.example/cb", "https://a/cb;ftp://b/cb"],
)
def test_each_part_of_a_callback_url_is_an_http_url_everywhere(
    client: FlaskClient, callback_url: str
) -> None:
    body = assert_problem(mint(client, {**FULL, "callback_url": callback_url}), 422)
    assert error_locs(body) == [["body", "callback_url"]]


def test_upload_url_comes_from_the_setting(make_settings: Callable[..., Settings]) -> None:
    client = create_app(make_settings(qiniu_upload_url="https://up-z2.qiniup.com")).test_client()
    assert mint(client, FULL).get_json()["upload_url"] == "https://up-z2.qiniup.com"


def test_without_credentials_the_route_is_503_and_the_rest_runs(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_app(make_settings(qiniu_access_key=None, qiniu_secret_key=None)).test_client()
    answer = mint(client, FULL)
    body = assert_problem(answer, 503)
    assert "NOTIFIER_QINIU_ACCESS_KEY" in body["detail"]
    assert answer.headers["Retry-After"] == "5"  # every 503 says when to retry
    mail = {"to": ["a@example.com"], "subject": "s", "text": "t"}
    assert client.post("/v1/mail", json=mail, headers=auth()).status_code == 202


def test_a_policy_field_the_sdk_would_drop_is_an_error() -> None:
    tokens = QiniuTokens(QiniuSettings(access_key="ak", secret_key=SecretStr("sk")))
    with pytest.raises(RuntimeError, match="dropped policy fields: notAQiniuField"):
        tokens.upload_token(bucket="b", key=None, expires_in=60, policy={"notAQiniuField": 1})

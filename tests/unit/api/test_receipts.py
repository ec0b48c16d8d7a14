"""Aliyun's and Tencent's receipt routes: the URL's token, the body, the vendors' answers."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from tests.support.harness.api import assert_problem, sent_sms

ALIYUN_TOKEN = "aliyun-receipt-token-0123456789"
TENCENT_TOKEN = "tencent_receipt_token_9876543210"
ALIYUN = f"/v1/receipts/aliyun?token={ALIYUN_TOKEN}"
TENCENT = f"/v1/receipts/tencent?token={TENCENT_TOKEN}"


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """An app with both receipt tokens set."""
    return create_app(
        make_settings(aliyun_receipt_token=ALIYUN_TOKEN, tencent_receipt_token=TENCENT_TOKEN)
    )


@pytest.fixture
def rt(app: Flask) -> Runtime:
    found: Runtime = app.extensions["notifier"]
    return found


def status(rt: Runtime, notification_id: str) -> tuple[str, str | None]:
    record = rt.store.get(notification_id)
    assert record is not None
    return record.status, record.error


def test_aliyuns_connectivity_check_needs_the_token(client: FlaskClient) -> None:
    answer = client.get(ALIYUN)
    assert answer.status_code == 200
    assert answer.get_json() == {"code": 0, "msg": "成功"}
    assert_problem(client.get("/v1/receipts/aliyun"), 403)
    assert_problem(client.get("/v1/receipts/aliyun?token=" + TENCENT_TOKEN), 403)


@pytest.mark.parametrize(
    "path",
    [
        "/v1/receipts/aliyun",
        "/v1/receipts/aliyun?token=",
        f"/v1/receipts/aliyun?token={ALIYUN_TOKEN}x",
        f"/v1/receipts/aliyun?token={ALIYUN_TOKEN[:-1]}",
        f"/v1/receipts/aliyun?token={TENCENT_TOKEN}",
        f"/v1/receipts/tencent?token={ALIYUN_TOKEN}",
        "/v1/receipts/tencent?token=%E6%88%90%E5%8A%9F",
        "/v1/receipts/tencent",
    ],
)
def test_a_missing_or_wrong_token_is_403_and_changes_nothing(
    client: FlaskClient, rt: Runtime, path: str
) -> None:
    sent_sms(rt.store, "n1", "aliyun", "100^0")
    sent_sms(rt.store, "n2", "tencent", "100^0")
    body = [{"biz_id": "100^0", "success": True, "sid": "100^0", "report_status": "SUCCESS"}]
    problem = assert_problem(client.post(path, json=body), 403)
    assert ALIYUN_TOKEN not in problem["detail"] and TENCENT_TOKEN not in problem["detail"]
    assert status(rt, "n1") == status(rt, "n2") == ("sent", None)


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
def test_an_unset_token_refuses_everything(
    make_settings: Callable[..., Settings], provider: str
) -> None:
    client = create_app(make_settings()).test_client()
    for token in ("", "None", ALIYUN_TOKEN):
        answer = client.post(f"/v1/receipts/{provider}?token={token}", json=[])
        problem = assert_problem(answer, 403)
        assert f"NOTIFIER_{provider.upper()}_RECEIPT_TOKEN" in problem["detail"]
    assert_problem(client.get("/v1/receipts/aliyun?token="), 403)


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        (b'{"biz_id": "1", "success": true}', "the body must be a JSON array"),
        (b'[{"biz_id": "1"}, 7]', "the body's item 1 is not a JSON object"),
        (b"[{]", "the body is not JSON"),
        (b'"[]"', "the body must be a JSON array"),
        (b'[{"sid": "1", "sid": "2"}]', "the JSON body repeats the key 'sid'"),
    ],
)
def test_a_body_not_an_array_of_objects_is_400(
    client: FlaskClient, body: bytes, detail: str
) -> None:
    for path in (ALIYUN, TENCENT):
        answer = client.post(path, data=body, content_type="application/json")
        assert assert_problem(answer, 400)["detail"].startswith(detail)


def test_an_aliyun_push_of_mixed_reports(client: FlaskClient, rt: Runtime) -> None:
    sent_sms(rt.store, "n1", "aliyun", "100^0")
    sent_sms(rt.store, "n2", "aliyun", "200^0")
    body = [
        {"phone_number": "1381111****", "success": True, "err_code": "DELIVERED", "biz_id": "100^0"},
        {"phone_number": "1381111****", "success": False, "err_code": "MK:0005", "err_msg": "空号",
         "biz_id": "200^0"},
        {"phone_number": "1381111****", "success": True, "err_code": "DELIVERED", "biz_id": "x^0"},
        {"success": True, "err_code": "DELIVERED"},
    ]  # fmt: skip
    answer = client.post(ALIYUN, json=body)
    assert answer.status_code == 200
    assert answer.get_json() == {"code": 0, "msg": "接收成功"}
    assert status(rt, "n1") == ("delivered", None)
    assert status(rt, "n2") == ("undelivered", "Aliyun MK:0005: 空号")
    assert client.post(ALIYUN, json=[]).get_json() == {"code": 0, "msg": "接收成功"}


def test_a_tencent_push_of_mixed_reports(client: FlaskClient, rt: Runtime) -> None:
    sent_sms(rt.store, "n1", "tencent", "2019:1")
    sent_sms(rt.store, "n2", "tencent", "2019:2")
    body = [
        {"mobile": "13800138000", "report_status": "SUCCESS", "errmsg": "DELIVRD", "sid": "2019:1"},
        {"mobile": "13800138000", "report_status": "FAIL", "errmsg": "-106", "sid": "2019:2"},
        {"mobile": "13800138000", "report_status": "SUCCESS", "errmsg": "DELIVRD", "sid": "9:9"},
        {"mobile": "13800138000", "report_status": "UNKNOWN", "sid": "2019:1"},
    ]
    answer = client.post(TENCENT, json=body)
    assert answer.status_code == 200
    assert answer.get_json() == {"result": 0, "errmsg": "OK"}
    assert status(rt, "n1") == ("delivered", None)
    assert status(rt, "n2") == ("undelivered", "Tencent -106")


@pytest.mark.parametrize("provider", ["aliyun", "tencent"])
@pytest.mark.parametrize("token", [None, "", "wrong-token"])
@pytest.mark.parametrize(
    "body",
    [b"[{]", b'{"not": "an array"}', b"[" + b"{}," * 400_000 + b"{}]"],  # bad JSON, too large
    ids=["not-json", "not-an-array", "too-large"],
)
def test_the_token_is_checked_before_the_body(
    client: FlaskClient, provider: str, token: str | None, body: bytes
) -> None:
    path = f"/v1/receipts/{provider}" + ("" if token is None else f"?token={token}")
    problem = assert_problem(client.post(path, data=body, content_type="application/json"), 403)
    assert "token does not match" in problem["detail"]


def test_twilios_route_is_403_for_a_body_too_large_to_check(
    make_settings: Callable[..., Settings],
) -> None:
    settings = make_settings(
        public_url="https://notifier.example", twilio_auth_token="0" * 32,
        sms_providers=["console"],
    )  # fmt: skip
    client = create_app(settings).test_client()
    form = {"MessageSid": "SM1", "MessageStatus": "delivered", "pad": "x" * (1024 * 1024)}
    unsigned = client.post("/v1/receipts/twilio", data=form)
    assert_problem(unsigned, 403)
    signed = client.post("/v1/receipts/twilio", data=form, headers={"X-Twilio-Signature": "x"})
    assert "too large" in assert_problem(signed, 403)["detail"]

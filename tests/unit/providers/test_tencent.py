"""Tencent's signature and wire format; what both template vendors share is test_template_sms."""

from __future__ import annotations

from notifier.providers.tencent import tc3_authorization
from tests.support.peers import tencent
from tests.support.peers.http_peer import Request, send_captcha
from tests.support.peers.tencent import (
    REGION,
    SDK_APP_ID,
    SIGN_NAME,
    TEMPLATE_ID,
    FakeTencent,
    provider,
)

PHONE = "+8613800138000"


# Computed by the official signer (tencentcloud-sdk-python-common 3.1.195,
# AbstractClient._build_req_with_tc3_signature, time fixed at 1700000000): Tencent's own
# documentation masks its example keys, so it gives no vector that can be recomputed.
SDK_BODY = (
    b'{"PhoneNumberSet": ["+8613800138000"], "SmsSdkAppId": "1400006666", "SignName": "Acme",'
    b' "TemplateId": "449739", "TemplateParamSet": ["123456", "5"]}'
)
SDK_AUTHORIZATION = (
    "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2023-11-14/sms/tc3_request, "
    "SignedHeaders=content-type;host, "
    "Signature=93c7ec91d711b9f2fde0d2d2b7c081d9e4c820fcce1f0e1f38858f654e132db7"
)


def test_signature_matches_the_official_sdks() -> None:
    assert (
        tc3_authorization(
            secret_id="AKIDEXAMPLE",
            secret_key="SECRETEXAMPLE",
            host="sms.tencentcloudapi.com",
            timestamp=1700000000,
            body=SDK_BODY,
        )
        == SDK_AUTHORIZATION
    )
    # The fake's own reading of the algorithm agrees, so it can judge our requests.
    headers = {
        "content-type": "application/json",
        "host": "sms.tencentcloudapi.com",
        "x-tc-timestamp": "1700000000",
    }
    signature = tencent.expected_signature(
        "SECRETEXAMPLE",
        Request("POST", "/", headers, SDK_BODY),
        date="2023-11-14",
        signed=["content-type", "host"],
    )
    assert SDK_AUTHORIZATION.endswith(signature)


def test_numbers_go_in_e164_with_app_region_and_template(fake_tencent: FakeTencent) -> None:
    sms = provider(fake_tencent.base_url)
    serial_no = send_captcha(sms)
    send_captcha(sms, to="+85291234567")
    assert [
        (s.phone, s.sign_name, s.template, s.params, s.sdk_app_id, s.region)
        for s in fake_tencent.sent
    ] == [
        (PHONE, SIGN_NAME, TEMPLATE_ID, ["123456"], SDK_APP_ID, REGION),
        ("+85291234567", SIGN_NAME, TEMPLATE_ID, ["123456"], SDK_APP_ID, REGION),
    ]
    assert serial_no == fake_tencent.sent[0].serial_no
    sms.close()


def test_a_template_with_minutes_gets_them_second(fake_tencent: FakeTencent) -> None:
    sms = provider(fake_tencent.base_url, template_id="449740", template_params=("code", "minutes"))
    send_captcha(sms)
    assert fake_tencent.sent[0].params == ["123456", "5"]
    sms.close()


def test_a_notifications_template_goes_with_its_params_in_order(fake_tencent: FakeTencent) -> None:
    sms = provider(fake_tencent.base_url)
    serial_no = sms.send_template(to=PHONE, template_id=tencent.SHIPPED, params=["Acme", "1234"])
    assert [(s.sign_name, s.template, s.params, s.serial_no) for s in fake_tencent.sent] == [
        (SIGN_NAME, tencent.SHIPPED, ["Acme", "1234"], serial_no)
    ]
    sms.close()


def test_a_clients_sign_name_replaces_the_settings(fake_tencent: FakeTencent) -> None:
    sms = provider(fake_tencent.base_url)
    sms.send_template(
        to=PHONE, template_id=tencent.SHIPPED, params=["Acme", "1234"],
        sign_name=tencent.CLIENT_SIGN_NAME,
    )  # fmt: skip
    assert fake_tencent.sent[0].sign_name == tencent.CLIENT_SIGN_NAME
    sms.close()

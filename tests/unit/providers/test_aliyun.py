"""Aliyun's signature and wire format; what both template vendors share is test_template_sms."""

from __future__ import annotations

from notifier.providers.aliyun import rpc_signature
from tests.support.peers import aliyun
from tests.support.peers.aliyun import SIGN_NAME, TEMPLATE_CODE, FakeAliyun, provider
from tests.support.peers.http_peer import send_captcha


def test_signature_matches_aliyuns_published_example() -> None:
    # The worked example of Aliyun's RPC signature documentation (a GET of DescribeRegions).
    params = {
        "AccessKeyId": "testid",
        "Action": "DescribeRegions",
        "Format": "XML",
        "SignatureMethod": "HMAC-SHA1",
        "SignatureNonce": "3ee8c1b8-83d3-44af-a94f-4e0ad82fd6cf",
        "SignatureVersion": "1.0",
        "TimeStamp": "2016-02-23T12:46:24Z",
        "Version": "2014-05-26",
    }
    expected = "CT9X0VtwR86fNWSnsc6v8YGOjuE="
    assert rpc_signature(params, secret="testsecret", method="GET") == expected
    # The fake's own reading of the algorithm agrees, so it can judge our requests.
    assert aliyun.signature("GET", params, "testsecret") == expected


def test_a_mainland_number_goes_as_11_digits_with_the_template(fake_aliyun: FakeAliyun) -> None:
    sms = provider(fake_aliyun.base_url)
    biz_id = send_captcha(sms)
    assert [(s.phone, s.sign_name, s.template, s.params, s.biz_id) for s in fake_aliyun.sent] == [
        ("13800138000", SIGN_NAME, TEMPLATE_CODE, {"code": "123456"}, biz_id)
    ]
    sms.close()


def test_an_international_number_goes_with_its_country_code(fake_aliyun: FakeAliyun) -> None:
    sms = provider(fake_aliyun.base_url)
    send_captcha(sms, to="+85291234567")
    assert fake_aliyun.sent[0].phone == "85291234567"
    sms.close()


def test_a_template_with_minutes_gets_them_as_a_string(fake_aliyun: FakeAliyun) -> None:
    sms = provider(
        fake_aliyun.base_url, template_code="SMS_465390001", template_params=("code", "minutes")
    )
    send_captcha(sms)
    assert fake_aliyun.sent[0].params == {"code": "123456", "minutes": "5"}
    sms.close()


def test_a_bare_host_endpoint_means_https() -> None:
    assert provider("dysmsapi.aliyuncs.com")._url == "https://dysmsapi.aliyuncs.com/"


def test_a_notifications_template_goes_with_its_named_params(fake_aliyun: FakeAliyun) -> None:
    sms = provider(fake_aliyun.base_url)
    biz_id = sms.send_template(
        to="+8613800138000", template_id=aliyun.SHIPPED, params={"shop": "Acme", "order": "1234"}
    )
    assert [(s.sign_name, s.template, s.params, s.biz_id) for s in fake_aliyun.sent] == [
        (SIGN_NAME, aliyun.SHIPPED, {"shop": "Acme", "order": "1234"}, biz_id)
    ]
    sms.close()


def test_a_clients_sign_name_replaces_the_settings(fake_aliyun: FakeAliyun) -> None:
    sms = provider(fake_aliyun.base_url)
    params = {"shop": "阿里商城", "order": "1234"}
    sms.send_template(
        to="+8613800138000", template_id=aliyun.SHIPPED, params=params,
        sign_name=aliyun.CLIENT_SIGN_NAME,
    )  # fmt: skip
    assert fake_aliyun.sent[0].sign_name == aliyun.CLIENT_SIGN_NAME
    sms.close()

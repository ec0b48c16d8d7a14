"""What the template-only SMS adapters (Aliyun, Tencent) promise alike, each against its fake.

The fakes check the vendor's signature, so every send here also proves our signing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import pytest

from notifier.embedded import free_port
from notifier.errors import NotForThisProvider, PermanentProviderError, TransientProviderError
from notifier.providers.base import CaptchaSender, SmsProvider, TemplateSender
from notifier.providers.signed_http import (
    OperatorError,
    RecipientThrottled,
    TemplateSmsProvider,
)
from tests.support.peers import aliyun, tencent
from tests.support.peers.http_peer import Answer, JsonPeer, send_captcha, silent_server

PHONE = "+8613800138000"


@dataclass
class Vendor:
    """A fake vendor and how to build the adapter pointed at it."""

    fake: Any
    support: ModuleType
    # The settings field holding the secret, and the code a wrong one gets.
    secret_field: str
    bad_signature: str

    def make(self, endpoint: str | None = None, **kw: Any) -> TemplateSmsProvider[Any]:
        build: Callable[..., TemplateSmsProvider[Any]] = self.support.provider
        return build(endpoint or self.fake.base_url, **kw)

    def template_sender(self) -> TemplateSender:
        """The adapter, as a named SMS's delivery sees it."""
        sms = self.make()
        assert isinstance(sms, TemplateSender)
        return sms


VENDORS: dict[str, tuple[type[JsonPeer[Any]], ModuleType, str, str]] = {
    "aliyun": (aliyun.FakeAliyun, aliyun, "access_key_secret", "SignatureDoesNotMatch"),
    "tencent": (tencent.FakeTencent, tencent, "secret_key", "AuthFailure.SignatureFailure"),
}


@pytest.fixture(params=sorted(VENDORS))
def vendor(request: pytest.FixtureRequest) -> Iterator[Vendor]:
    """Each vendor's fake, started for one test."""
    fake_class, support, secret_field, bad_signature = VENDORS[request.param]
    fake = fake_class().start()
    yield Vendor(fake, support, secret_field, bad_signature)
    fake.stop()


def test_satisfies_the_three_protocols(vendor: Vendor) -> None:
    sms = vendor.make()
    assert isinstance(sms, SmsProvider)
    assert isinstance(sms, CaptchaSender)
    assert isinstance(sms, TemplateSender)


def test_parameters_in_the_other_style_are_the_operators_mistake_and_not_sent(
    vendor: Vendor,
) -> None:
    """A named SMS whose table for a vendor has its parameters in the other style (a start-up
    check finds it first, see services/sms.py check_templates) never reaches the vendor."""
    sms = vendor.template_sender()
    named = sms.params_style == "named"
    wrong: dict[str, str] | list[str] = ["Acme", "1234"] if named else {"shop": "Acme"}
    template = vendor.support.SHIPPED
    with pytest.raises(OperatorError) as caught:
        sms.send_template(to=PHONE, template_id=template, params=wrong)
    assert caught.value.code == "params"
    assert vendor.fake.requests == 0
    right: dict[str, str] | list[str] = (
        {"shop": "Acme", "order": "1234"} if named else ["Acme", "1234"]
    )
    assert sms.send_template(to=PHONE, template_id=template, params=right)
    sms.close()


def test_a_sign_name_the_vendor_did_not_approve_is_the_operators_mistake(vendor: Vendor) -> None:
    sms = vendor.template_sender()
    params: dict[str, str] | list[str] = (
        {"shop": "Acme", "order": "1"} if sms.params_style == "named" else ["Acme", "1"]
    )
    with pytest.raises(OperatorError, match=r"SIGNATURE|Signature"):
        sms.send_template(
            to=PHONE, template_id=vendor.support.SHIPPED, params=params, sign_name="别人的签名"
        )
    assert vendor.fake.sent == []
    sms.close()


def test_returns_the_vendors_message_id(vendor: Vendor) -> None:
    sms = vendor.make()
    message_id = send_captcha(sms)
    assert [message_id] == [
        s.biz_id if vendor.support is aliyun else s.serial_no for s in vendor.fake.sent
    ]
    sms.close()


PLANNED = [
    ("THROTTLED", TransientProviderError),
    ("SERVER_ERROR", TransientProviderError),
    ("RECIPIENT_LIMIT", RecipientThrottled),
    ("INVALID_NUMBER", PermanentProviderError),
    ("VALUES_REFUSED", NotForThisProvider),
    ("NO_BALANCE", OperatorError),
]


@pytest.mark.parametrize(("answer", "error"), PLANNED)
def test_planned_failures_map_to_our_errors(
    vendor: Vendor, answer: str, error: type[Exception]
) -> None:
    planned = getattr(vendor.support, answer)
    vendor.fake.plan(PHONE, planned)
    sms = vendor.make()
    with pytest.raises(error) as caught:
        send_captcha(sms)
    assert type(caught.value) is error
    assert planned.code in str(caught.value)
    assert send_captcha(sms)  # the plan is used up: the next send goes through
    assert len(vendor.fake.sent) == 1
    sms.close()


@pytest.mark.parametrize(
    ("vendor", "override", "code"),
    [
        ("aliyun", {"access_key_id": "LTAInobody"}, "InvalidAccessKeyId.NotFound"),
        ("aliyun", {"template_code": "SMS_0"}, "isv.SMS_TEMPLATE_ILLEGAL"),
        ("aliyun", {"sign_name": "别人的签名"}, "isv.SMS_SIGNATURE_ILLEGAL"),
        ("aliyun", {"template_params": ("code", "minutes")}, "isv.TEMPLATE_MISSING_PARAMETERS"),
        ("tencent", {"secret_id": "AKIDnobody"}, "AuthFailure.SecretIdNotFound"),
        ("tencent", {"sdk_app_id": "1400000000"}, "InvalidParameterValue.SdkAppIdNotExist"),
        ("tencent", {"template_id": "1"}, "FailedOperation.TemplateIncorrectOrUnapproved"),
        ("tencent", {"sign_name": "别人的签名"}, "FailedOperation.SignatureIncorrectOrUnapproved"),
        (
            "tencent",
            {"template_params": ("code", "minutes")},
            "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
        ),
    ],
    indirect=["vendor"],
)
def test_the_operators_mistakes_are_operator_errors(
    vendor: Vendor, override: dict[str, Any], code: str
) -> None:
    sms = vendor.make(**override)
    with pytest.raises(OperatorError) as caught:
        send_captcha(sms)
    assert caught.value.code == code
    assert vendor.fake.sent == []
    sms.close()


@pytest.mark.parametrize(
    ("vendor", "answer"),
    [
        ("aliyun", aliyun.SYSTEM_ERROR),
        ("aliyun", Answer(500, "InternalError")),
        ("aliyun", Answer(502, "BadGateway")),
        ("tencent", tencent.GATEWAY_ERROR),
        ("tencent", tencent.Answer("InternalError.Timeout", whole_request=True)),
        (
            "tencent",
            tencent.Answer("RequestLimitExceeded.GlobalRegionUinLimitExceeded", whole_request=True),
        ),
    ],
    indirect=["vendor"],
)
def test_server_side_failures_are_transient(vendor: Vendor, answer: Any) -> None:
    vendor.fake.plan(PHONE, answer)
    sms = vendor.make()
    with pytest.raises(TransientProviderError) as caught:
        send_captcha(sms)
    assert not isinstance(caught.value, OperatorError | RecipientThrottled)
    sms.close()


def test_a_wrong_secret_is_refused_by_the_fakes_signature_check(
    vendor: Vendor, caplog: pytest.LogCaptureFixture
) -> None:
    sms = vendor.make(**{vendor.secret_field: "not-the-secret"})
    with caplog.at_level(logging.ERROR), pytest.raises(OperatorError) as caught:
        send_captcha(sms)
    assert caught.value.code == vendor.bad_signature
    assert caught.value.operator_error
    assert isinstance(caught.value, TransientProviderError)
    assert vendor.fake.sent == []
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert vendor.bad_signature in record.getMessage()
    # Aliyun quotes its string to sign back, our parameters in it: no number reaches the log.
    for text in (record.getMessage(), str(caught.value)):
        assert "0013800" not in text
    sms.close()


def test_free_text_is_refused(vendor: Vendor) -> None:
    with pytest.raises(PermanentProviderError, match="sends templates only"):
        vendor.make().send_sms(to=PHONE, body="hello")


def test_a_number_that_is_not_e164_is_permanent_and_not_sent(vendor: Vendor) -> None:
    with pytest.raises(PermanentProviderError, match=r"E\.164"):
        send_captcha(vendor.make(), to="13800138000")
    assert vendor.fake.requests == 0


def test_unknown_template_variables_are_refused_at_start(vendor: Vendor) -> None:
    with pytest.raises(ValueError, match="product"):
        vendor.make(template_params=("code", "product"))


def test_connections_are_kept_alive_across_sends_and_threads(vendor: Vendor) -> None:
    sms = vendor.make(max_connections=4)
    for _ in range(10):
        send_captcha(sms)
    assert vendor.fake.connections == 1
    # Threads sharing one provider (the worker's model) stay within its pool.
    with ThreadPoolExecutor(max_workers=4) as pool:
        ids = list(pool.map(lambda _: send_captcha(sms), range(40)))
    assert len(set(ids)) == 40
    assert vendor.fake.requests == 50
    assert vendor.fake.connections <= 4
    sms.close()


def test_usable_again_after_close(vendor: Vendor) -> None:
    sms = vendor.make()
    send_captcha(sms)
    sms.close()
    assert send_captcha(sms)
    assert vendor.fake.connections == 2


def test_a_server_that_never_answers_times_out(vendor: Vendor) -> None:
    with silent_server() as url:
        sms = vendor.make(url, timeout=0.3)
        started = time.monotonic()
        with pytest.raises(
            TransientProviderError, match=r"unreachable: DeadlineExceeded"
        ) as caught:
            send_captcha(sms)
        assert time.monotonic() - started < 5
        assert caught.value.__cause__ is not None
        sms.close()


def test_unreachable_is_transient(vendor: Vendor) -> None:
    sms = vendor.make(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientProviderError, match="unreachable: ConnectionError"):
        send_captcha(sms)
    sms.close()

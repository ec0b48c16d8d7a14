"""The local SES of the tests (``tests/support/peers/ses.py``) and its Signature Version 4 check
(``tests/support/peers/sigv4.py``), held to AWS's published test-suite vectors and to requests
boto3 makes itself (none of Notifier's code): it takes a right one and refuses a wrong secret, a
changed byte, another region and a stale clock, so a test that passes through it means SES
would take the request."""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.support.peers import ses, sigv4

# AWS's Signature Version 4 test suite (aws-c-auth's tests/aws-signing-test-suite/v4, the
# header-signed-request.txt of each case): the example credential, scope and clock.
SUITE_KEY = {"AKIDEXAMPLE": "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"}
SUITE_AT = datetime(2015, 8, 30, 12, 36, tzinfo=UTC)
SUITE = [
    # (case, method, target, headers beyond host and x-amz-date, body, signed headers, signature)
    ("get-vanilla", "GET", "/", {}, b"", "host;x-amz-date",
     "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"),
    ("get-vanilla-query-order-key-case", "GET", "/?Param2=value2&Param1=value1", {}, b"",
     "host;x-amz-date", "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"),
    ("get-header-value-trim", "GET", "/",
     {"my-header1": " value1", "my-header2": ' "a   b   c"'}, b"",
     "host;my-header1;my-header2;x-amz-date",
     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"),
    ("get-utf8", "GET", "/\u1234", {}, b"", "host;x-amz-date",
     "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"),
    ("post-header-key-sort", "POST", "/", {"my-header1": "value1"}, b"",
     "host;my-header1;x-amz-date",
     "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c"),
    ("post-x-www-form-urlencoded", "POST", "/",
     {"content-type": "application/x-www-form-urlencoded", "content-length": "13",
      "x-amz-content-sha256": hashlib.sha256(b"Param1=value1").hexdigest()},
     b"Param1=value1", "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
     "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"),
]  # fmt: skip


def suite_request(case: tuple[Any, ...]) -> tuple[str, str, dict[str, str], bytes]:
    _, method, target, extra, body, signed, signature = case
    headers = {
        "host": "example.amazonaws.com",
        "x-amz-date": "20150830T123600Z",
        **extra,
        "authorization": f"AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/"
        f"aws4_request, SignedHeaders={signed}, Signature={signature}",
    }
    return method, target, headers, body


def suite_verify(method: str, target: str, headers: dict[str, str], body: bytes) -> None:
    sigv4.verify(method, target, headers, body, secrets=SUITE_KEY, region="us-east-1",
                 service="service", now=SUITE_AT)  # fmt: skip


@pytest.mark.parametrize("case", SUITE, ids=[case[0] for case in SUITE])
def test_the_aws_test_suite_verifies_and_a_changed_request_does_not(case: tuple[Any, ...]) -> None:
    method, target, headers, body = suite_request(case)
    suite_verify(method, target, headers, body)
    changes = [
        (method, target + ("&" if "?" in target else "?") + "x=1", headers, body),
        ("PUT", target, headers, body),
        (method, target, {**headers, "x-amz-date": "20150830T123601Z"}, body),
        (method, target, headers, body + b"!"),
    ]
    for changed in changes:
        with pytest.raises(sigv4.Refusal) as refused:
            suite_verify(*changed)
        assert refused.value.code == "InvalidSignatureException"


def test_a_stale_or_foreign_signature_is_refused() -> None:
    method, target, headers, body = suite_request(SUITE[0])
    for now, secrets, region, code in [
        (datetime(2015, 8, 30, 12, 42, tzinfo=UTC), SUITE_KEY, "us-east-1",
         "InvalidSignatureException"),
        (SUITE_AT, {"AKIDOTHER": "x"}, "us-east-1", "UnrecognizedClientException"),
        (SUITE_AT, SUITE_KEY, "eu-west-1", "InvalidSignatureException"),
    ]:  # fmt: skip
        with pytest.raises(sigv4.Refusal) as refused:
            sigv4.verify(method, target, headers, body, secrets=secrets, region=region,
                         service="service", now=now)  # fmt: skip
        assert refused.value.code == code
    unsigned = {k: v for k, v in headers.items() if k != "authorization"}
    with pytest.raises(sigv4.Refusal, match="Missing Authentication Token"):
        suite_verify(method, target, unsigned, body)


@pytest.fixture(scope="module")
def fake() -> Iterator[ses.FakeSes]:
    server = ses.FakeSes().start()
    yield server
    server.stop()


def boto3_client(fake: ses.FakeSes, secret: str = ses.SECRET_ACCESS_KEY, **kw: Any) -> Any:
    """An SES v2 client of boto3's own, its own HTTP and all, pointed at the fake."""
    return boto3.client(
        "sesv2",
        aws_access_key_id=kw.pop("key", ses.ACCESS_KEY_ID),
        aws_secret_access_key=secret,
        region_name=kw.pop("region", ses.REGION),
        endpoint_url=fake.base_url,
        config=Config(retries={"total_max_attempts": 1}),
    )


RAW = (
    b"From: Acme <noreply@example.com>\r\nTo: ada@example.com\r\nSubject: Hi\r\n"
    b"Message-ID: <n1.abc@example.com>\r\nDate: Mon, 1 Jan 2024 00:00:00 +0000\r\n"
    b"\r\nHello\r\n"
)


def send(client: Any, to: str = "ada@example.com", **kw: Any) -> Any:
    return client.send_email(
        Destination={"ToAddresses": [to], "BccAddresses": ["audit@example.com"]},
        Content={"Raw": {"Data": kw.pop("raw", RAW)}},
        EmailTags=[{"Name": "notification_id", "Value": "n1"}],
        ConfigurationSetName=kw.pop("configuration_set", ses.CONFIGURATION_SET),
        **kw,
    )


def refused_with(code: str, call: Any) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] == code, caught.value.response
    return str(caught.value.response["Error"]["Message"])


def test_boto3s_request_is_taken_as_ses_takes_it(fake: ses.FakeSes) -> None:
    answer = send(boto3_client(fake))
    (sent,) = [s for s in fake.sent if s.message_id == answer["MessageId"]]
    assert sent.raw == RAW  # boto3 sent it in base64; the fake decoded it
    assert sent.destination == {"ToAddresses": ["ada@example.com"],
                                "BccAddresses": ["audit@example.com"]}  # fmt: skip
    assert (sent.tags, sent.configuration_set) == ({"notification_id": "n1"}, "notifier-events")
    # What a recipient gets carries SES's Message-ID and Date, the rest as it came.
    assert f"Message-ID: <{sent.message_id}@email.amazonses.com>".encode() in sent.delivered
    assert b"n1.abc@example.com" not in sent.delivered
    assert sent.delivered.endswith(b"\r\n\r\nHello\r\n")


def test_a_wrong_secret_a_changed_byte_or_another_region_is_refused(fake: ses.FakeSes) -> None:
    before = len(fake.sent)
    message = refused_with("InvalidSignatureException", lambda: send(boto3_client(fake, "x")))
    assert "does not match" in message
    refused_with("UnrecognizedClientException",
                 lambda: send(boto3_client(fake, key="AKIAUNKNOWN000000000")))  # fmt: skip
    refused_with("InvalidSignatureException",
                 lambda: send(boto3_client(fake, region="us-east-1")))  # fmt: skip

    def change_a_byte(request: Any, **_: Any) -> None:
        # After boto3 signed it, before it goes: one character of the raw message's base64.
        body = request.body.decode()
        request.body = body.replace(base64.b64encode(RAW).decode()[:8], "QUFBQUFB", 1).encode()

    client = boto3_client(fake)
    client.meta.events.register("before-send.sesv2.SendEmail", change_a_byte)
    refused_with("InvalidSignatureException", lambda: send(client))
    assert len(fake.sent) == before


def test_a_clock_five_minutes_off_is_refused(fake: ses.FakeSes) -> None:
    fake.clock_offset = 301
    try:
        message = refused_with("InvalidSignatureException", lambda: send(boto3_client(fake)))
    finally:
        fake.clock_offset = 0
    assert message.startswith("Signature expired")


def test_what_ses_refuses_in_the_request(fake: ses.FakeSes) -> None:
    client = boto3_client(fake)
    refused_with("NotFoundException", lambda: send(client, configuration_set="nope"))
    unverified = RAW.replace(b"noreply@example.com", b"noreply@example.org")
    message = refused_with("MessageRejected", lambda: send(client, raw=unverified))
    assert "not verified" in message and "noreply@example.org" in message
    crowd = [f"r{i}@example.com" for i in range(50)]
    refused_with("MessageRejected", lambda: client.send_email(
        Destination={"ToAddresses": crowd, "CcAddresses": ["one.more@example.com"]},
        Content={"Raw": {"Data": RAW}},
    ))  # fmt: skip
    refused_with("BadRequestException", lambda: send(client, to="用户@example.com"))
    long_line = RAW.replace(b"Hello", b"x" * 999)
    refused_with("MessageRejected", lambda: send(client, raw=long_line))


def test_planned_refusals_come_first_then_it_sends(fake: ses.FakeSes) -> None:
    fake.plan("busy@example.com", ses.THROTTLED, ses.UNAVAILABLE)
    client = boto3_client(fake)
    refused_with("TooManyRequestsException", lambda: send(client, to="busy@example.com"))
    refused_with("ServiceUnavailable", lambda: send(client, to="busy@example.com"))
    assert send(client, to="busy@example.com")["MessageId"]

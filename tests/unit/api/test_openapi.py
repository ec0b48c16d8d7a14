"""The OpenAPI document against the server, case by case: each bound it states is the one the
server enforces (the fuzz test, tests/integration/test_fuzz.py, looks for the cases no one
listed)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jsonschema_rs
import pytest
from flask.testing import FlaskClient

from tests.support.harness.clients import auth

MAIL = {"to": ["ada@example.com"], "subject": "Hi", "text": "Hello"}
WELCOME = {"name": "Ada", "product": "Acme", "login_url": "https://acme.example/login"}
CAPTCHA = {"phone": "+8613800138000", "purpose": "login"}
SMS = {"to": "+8613800138000", "text": "Your parcel ships today."}
SHIPPED = {"shop": "Acme", "order": "1234"}
QINIU = {"bucket": "avatars", "key": "u/1.png"}
S3 = {"bucket": "avatars", "key": "u/1.png"}


def days(n: int) -> str:
    return (datetime.now(UTC) + timedelta(days=n)).isoformat()


# (route, body, whether the server takes it): the document must say the same of the body.
CASES: list[tuple[str, Any, bool]] = [
    ("/v1/mail", MAIL, True),
    ("/v1/mail", {**MAIL, "to": []}, False),  # no recipient in to, cc or bcc
    ("/v1/mail", {**MAIL, "to": [], "bcc": ["ada@example.com"]}, True),
    ("/v1/mail", {**MAIL, "subject": None}, False),  # content without a subject
    ("/v1/mail", {"to": ["ada@example.com"], "subject": "Hi"}, False),  # nor text nor html
    ("/v1/mail", {"to": ["ada@example.com"], "template": "welcome", "data": WELCOME}, True),
    ("/v1/mail", {"to": ["ada@example.com"], "template": "welcome"}, False),  # its data
    ("/v1/mail", {"to": ["a@example.com"], "template": "nope", "data": WELCOME}, False),
    (
        "/v1/mail",
        {"to": ["a@example.com"], "template": "welcome", "data": {**WELCOME, "name": "A\nB"}},
        False,
    ),
    (
        "/v1/mail",
        {"to": ["a@example.com"], "template": "welcome", "data": {**WELCOME, "name": ["A\nB"]}},
        True,
    ),
    ("/v1/mail", {**MAIL, "unsubscribe": True}, True),
    ("/v1/mail", {**MAIL, "unsubscribe": True, "cc": ["bo@example.com"]}, False),
    ("/v1/mail", {**MAIL, "to": ["ada@mail.test"]}, False),  # a special-use domain
    ("/v1/mail", {**MAIL, "to": ["ada@MAIL.LocalHost"]}, False),
    ("/v1/mail", {**MAIL, "send_at": days(10)}, True),
    ("/v1/mail", {**MAIL, "send_at": days(-400)}, True),
    ("/v1/mail", {**MAIL, "send_at": days(31)}, False),
    ("/v1/mail", {**MAIL, "reference": "order\u200b1"}, False),  # a zero-width space
    ("/v1/mail", {**MAIL, "reference": "订单 1 🧾"}, True),
    ("/v1/mail", {**MAIL, "reference": "order\U000f0001"}, False),  # private use
    ("/v1/mail", {**MAIL, "subject": "a\u2028b"}, False),
    (
        "/v1/mail/batch",
        {"subject": "Hi", "text": "x", "recipients": [{"to": "a@example.com"}]},
        True,
    ),
    ("/v1/mail/batch", {"text": "x", "recipients": [{"to": "a@example.com"}]}, False),
    ("/v1/mail/batch", {"template": "welcome", "recipients": [{"to": "a@example.com"}]}, False),
    ("/v1/sms", SMS, True),
    ("/v1/sms", {**SMS, "template": "shipped", "data": SHIPPED}, False),  # text and template
    ("/v1/sms", {"to": SMS["to"]}, False),  # neither
    ("/v1/sms", {**SMS, "text": "x" * 1601}, False),
    ("/v1/sms", {"to": SMS["to"], "template": "shipped", "data": SHIPPED}, True),
    ("/v1/sms", {"to": SMS["to"], "template": "shipped", "data": {"shop": "A"}}, False),
    ("/v1/sms", {"to": SMS["to"], "template": "nope", "data": SHIPPED}, False),
    (
        "/v1/sms/batch",
        {"template": "shipped", "recipients": [{"to": SMS["to"], "data": SHIPPED}]},
        True,
    ),
    ("/v1/sms/batch", {"template": "shipped", "recipients": [{"to": SMS["to"]}]}, False),
    ("/v1/sms/batch", {"recipients": [{"to": SMS["to"], "data": SHIPPED}]}, False),
    ("/v1/sms/captcha", {**CAPTCHA, "client_ip": "::ffff:198.51.100.7"}, True),
    ("/v1/sms/captcha", {**CAPTCHA, "purpose": "reset", "client_ip": "fe80::1%eth0"}, False),
    ("/v1/sms/captcha", {**CAPTCHA, "purpose": "reset", "client_ip": "256.1.1.1"}, False),
    ("/v1/uploads/qiniu/token", QINIU, True),
    ("/v1/uploads/qiniu/token", {**QINIU, "fsize_limit": 0}, False),
    ("/v1/uploads/qiniu/token", {**QINIU, "key_prefix": "u/"}, False),  # key and prefix
    ("/v1/uploads/qiniu/token", {**QINIU, "callback_url": "https://a.example/cb"}, False),
    (
        "/v1/uploads/qiniu/token",
        {**QINIU, "callback_url": "https://a.example/\x85", "callback_body": "k=$(key)"},
        False,
    ),
    ("/v1/uploads/s3/token", S3, True),
    ("/v1/uploads/s3/token", {**S3, "key": "u/${filename}"}, False),
    ("/v1/uploads/s3/token", {**S3, "key": "u/\u00ad1.png"}, False),  # a soft hyphen
    ("/v1/uploads/cos/token", {**S3, "bucket": "avatars-1250000000"}, True),
    ("/v1/uploads/cos/token", S3, False),  # a COS bucket carries its APPID
    ("/v1/uploads/cos/token", {**S3, "bucket": "avatars-1250000000", "key": "a" * 851}, False),
    ("/v1/uploads/cos/token", {**S3, "bucket": "avatars-1250000000", "key": "a" * 850}, True),
    ("/v1/uploads/gcs/token", S3, True),
    ("/v1/uploads/gcs/token", {**S3, "bucket": "Avatars"}, False),
]


def body_schema(document: dict[str, Any], route: str) -> jsonschema_rs.Validator:
    ref = document["paths"][route]["post"]["requestBody"]["content"]["application/json"]
    return jsonschema_rs.validator_for(
        {**document, **ref["schema"]}, validate_formats=True, ignore_unknown_formats=True
    )


@pytest.mark.parametrize(("route", "body", "taken"), CASES)
def test_the_document_says_of_a_body_what_the_server_does(
    client: FlaskClient, route: str, body: Any, taken: bool
) -> None:
    document = client.get("/openapi.json").get_json()
    answer = client.post(route, json=body, headers=auth())
    assert (answer.status_code < 300) is taken, answer.get_data(as_text=True)
    assert body_schema(document, route).is_valid(body) is taken


@pytest.mark.parametrize(
    ("cursor", "taken"), [("0", True), (str(2**64 - 1), True), (str(2**64), False)]
)
def test_the_document_says_of_a_cursor_what_the_server_does(
    client: FlaskClient, cursor: str, taken: bool
) -> None:
    document = client.get("/openapi.json").get_json()
    (parameter,) = document["paths"]["/v1/suppressions"]["get"]["parameters"]
    answer = client.get(f"/v1/suppressions?cursor={cursor}", headers=auth())
    assert (answer.status_code == 200) is taken
    assert jsonschema_rs.validator_for(parameter["schema"]).is_valid(cursor) is taken


def test_a_receipt_push_is_documented_as_an_array_of_objects(client: FlaskClient) -> None:
    document = client.get("/openapi.json").get_json()
    for route in ("/v1/receipts/aliyun", "/v1/receipts/tencent"):
        validator = body_schema(document, route)
        assert validator.is_valid([{"biz_id": "1"}]) and not validator.is_valid({"a": 1})


def test_the_document_uses_only_json_schema_keywords_and_portable_patterns(
    client: FlaskClient,
) -> None:
    """No keyword a validator would skip (pydantic wrote "ge" for a bound it could not place),
    and no escape whose meaning changes between regex dialects (\\s, \\d, \\w, \\b)."""
    document = client.get("/openapi.json").get_json()
    found: list[str] = []

    def walk(node: Any, at: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in ("ge", "gt", "le", "lt", "min_length", "max_length"):
                    found.append(f"{at}/{key}")
                if key == "pattern" and any(e in value for e in ("\\s", "\\d", "\\w", "\\b")):
                    found.append(f"{at}/pattern {value}")
                walk(value, f"{at}/{key}")
        elif isinstance(node, list):
            for index, value in enumerate(node):
                walk(value, f"{at}/{index}")

    walk(document, "")
    assert found == []


def test_the_unprintable_table_is_the_running_pythons_unicode_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What is printable comes from a table a Unicode version (gunicorn's master once worked it
    out at every start): the running Python's row must be what its Unicode data says, and a
    Python whose version has no row works the same rules out itself."""
    import unicodedata

    from notifier import schemas

    assert schemas.UNPRINTABLE[unicodedata.unidata_version] == schemas.unprintable_spans()
    from_the_table = schemas.printable_rules()
    monkeypatch.setattr(schemas, "UNPRINTABLE", {})
    worked_out = schemas.printable_rules.__wrapped__()
    assert worked_out[0].pattern == from_the_table[0].pattern
    assert worked_out[1:] == from_the_table[1:]


def test_the_characters_urlsplit_refuses_in_a_netloc_are_all_named() -> None:
    """A callback URL's netloc may hold none of them (urlsplit's _checknetloc); the document
    names them so, and must name every one the running Python's Unicode data has."""
    import unicodedata

    from notifier.schemas import NFKC_NETLOC

    found = tuple(
        cp
        for cp in range(0x80, 0x110000)
        if set(unicodedata.normalize("NFKC", chr(cp))) & set("/?#@:")
    )
    assert found == NFKC_NETLOC

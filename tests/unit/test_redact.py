from __future__ import annotations

import json
import logging

import pytest

from notifier.logs import JsonFormatter, request_id
from notifier.redact import mask_recipient, redact, scrub


def test_addresses_and_numbers_are_masked() -> None:
    text = "SMTP 550: <ada.lovelace@example.com> unknown; SMS to +8613800138000 failed"
    assert redact(text) == "SMTP 550: <a***@example.com> unknown; SMS to +86*********00 failed"


def full_width(text: str) -> str:
    return text.translate({ord(c): ord(c) + 0xFEE0 for c in "+0123456789"})


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("用户@例子.中国", "用***@例子.中国"),
        ("x@bücher.example", "***@bücher.example"),  # one character: none of it shown
        ("<jürgen@xn--bcher-kva.example> unknown", "<j***@xn--bcher-kva.example> unknown"),
        ("ユーザー@例え。テスト", "ユ***@例え。テスト"),
        ('"ada lovelace"@example.com', "a***@example.com"),
        ('"a\\"b"@example.com', "a***@example.com"),
        ("RCPT TO:<ada@[192.0.2.1]>", "RCPT TO:<a***@[192.0.2.1]>"),
        ("('ada@example.com',)", "('a***@example.com',)"),
        ("mailto:ada@example.com.", "mailto:a***@example.com."),
        ("o.brien+tag@mail.example.org", "o***@mail.example.org"),
        ("b'\\xe7\\x94\\xa8@\\xe4\\xbe\\x8b.cn'", "b'\\***@\\xe4\\xbe\\x8b.cn'"),
        ("+86 138 0013 8000", "+86 *** **** **00"),
        ("+1 (415) 555-0100", "+1 (4**) ***-**00"),
        (full_width("+8613800138000"), full_width("+86") + "*********" + full_width("00")),
        (
            "    @shared_task(name='x') took 12345678901 ms",
            "    @shared_task(name='x') took 12345678901 ms",
        ),
    ],
)
def test_addresses_and_numbers_are_masked_by_their_shape(text: str, masked: str) -> None:
    assert redact(text) == masked


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        # An SNS confirmation that failed quotes its SubscribeURL, Token and all.
        ("fetch of https://sns.example/?Action=Confirm&Token=abc123 failed",
         "fetch of https://sns.example/?Action=[redacted]&Token=[redacted] failed"),
        ("to %2B8613800138000 and ada%40example.com", "to +86*********00 and a***@example.com"),
        ("GET /v1/unsubscribe/AbCd?x=1 done", "GET /v1/unsubscribe/[redacted]?x=[redacted] done"),
        ("50% done; is a?b c=d a question", "50% done; is a?b c=d a question"),
    ],
)  # fmt: skip
def test_urls_in_free_text_have_their_tokens_masked_for_telemetry(text: str, masked: str) -> None:
    assert scrub(text) == masked


def test_what_a_client_reads_keeps_its_help_links() -> None:
    # A stored error or a bounce's diagnostic: why the mail was refused, addresses masked.
    said = "550 5.1.1 ada@example.com unknown https://support.google.com/mail/?p=NoSuchUser"
    assert redact(said) == (
        "550 5.1.1 a***@example.com unknown https://support.google.com/mail/?p=NoSuchUser"
    )


def test_json_lines_carry_level_message_request_id_and_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "x",
            "levelname": "INFO",
            "msg": "to %s",
            "args": ("bob@example.com",),
            "status": 202,
        }
    )
    token = request_id.set("r-1")
    try:
        record.request_id = request_id.get()
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "to b***@example.com"
    assert (entry["level"], entry["logger"], entry["request_id"], entry["status"]) == (
        "INFO",
        "x",
        "r-1",
        202,
    )
    assert "\n" not in line


@pytest.mark.parametrize(
    ("recipient", "shown"),
    [
        ("ada@example.com", "a***@example.com"),
        ("用户@例子.中国", "用***@例子.中国"),
        ("+8613800138000", "+86138****8000"),
        ("+14155550100", "+141****0100"),
        ("+447911123456", "+4479****3456"),
        ("a@example.com", "***@example.com"),  # its first character would be all of it
        ("bo@example.com", "b***@example.com"),
        ("+6834002", "+****002"),  # seven digits (Niue): four hidden still
        ("+12345678", "+****5678"),
        ("+1234", "+****"),
    ],
)
def test_one_recipient_is_masked_as_the_console_shows_it(recipient: str, shown: str) -> None:
    assert mask_recipient(recipient) == shown


@pytest.mark.parametrize(
    ("target", "shown", "hidden"),
    [
        # A raw request target (gunicorn's RAW_URI, which traces record) is percent-encoded.
        ("/v1/suppressions/ada%40example.com", "a***@example.com", "ada"),
        ("/v1/suppressions/ada@example.com?client=shop", "a***@example.com", "shop"),
        ("/v1/x/%2B8613800138000", "+86", "13800138000"),
        ("/v1/suppressions/ada%2540example.com", "a***@example.com", "ada"),  # encoded twice
        ("/v1/x?token=abc%23secret", "token=[redacted]", "secret"),  # an encoded # in a value
        ("/v1/x?token=abc%26rest=1", "token=[redacted]", "rest"),
    ],
)
def test_a_url_is_redacted_as_it_reads_percent_encoded_or_not(
    target: str, shown: str, hidden: str
) -> None:
    from notifier.redact import redact_url

    found = redact_url(target)
    assert shown in found and hidden not in found

"""Request and response models of the HTTP API (the OpenAPI document is generated from these)."""

from __future__ import annotations

import contextlib
import ipaddress
import re
import unicodedata
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Annotated, Any, Literal

import email_validator
import phonenumbers
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    EmailStr,
    Field,
    RootModel,
)
from pydantic.config import JsonDict

from notifier import objectkeys
from notifier.segments import characters

MAX_RECIPIENTS = 50
MAX_SCHEDULE_AHEAD = timedelta(days=30)
Status = Literal[
    "scheduled", "queued", "sending", "retrying", "sent", "failed", "cancelled",
    "delivered", "undelivered", "suppressed",
]  # fmt: skip


Spans = tuple[tuple[int, int], ...]  # code points, first to last, each span's both included


def _spans(code_points: Iterable[int]) -> Spans:
    """``code_points`` (sorted) as spans."""
    spans: list[tuple[int, int]] = []
    for cp in code_points:
        if spans and spans[-1][1] == cp - 1:
            spans[-1] = (spans[-1][0], cp)
        else:
            spans.append((cp, cp))
    return tuple(spans)


def _class(spans: Spans) -> str:
    """A regex character class's body (no brackets) holding exactly ``spans``."""
    # As the characters themselves: the document's JSON escapes them, and the regex engines
    # that read it (Python's, ECMA 262's, Rust's) take a literal alike, astral ones too.
    return "".join(chr(a) if a == b else f"{chr(a)}-{chr(b)}" for a, b in spans)


def _ranges(code_points: list[int]) -> str:
    """A regex character class's body (no brackets) holding exactly ``code_points``, sorted."""
    return _class(_spans(code_points))


def _within(spans: Spans, first: int, last: int) -> Spans:
    return tuple((max(a, first), min(b, last)) for a, b in spans if a <= last and b >= first)


def _without(spans: Spans, first: int, last: int) -> Spans:
    kept: list[tuple[int, int]] = []
    for a, b in spans:
        if b < first or a > last:
            kept.append((a, b))
            continue
        if a < first:
            kept.append((a, first - 1))
        if b > last:
            kept.append((last + 1, b))
    return tuple(kept)


# Not printable: controls, format characters (zero-width, bidi overrides), separators but the
# space, surrogates, private use, and noncharacters. Unassigned code points pass: they are a
# newer Unicode's characters (an emoji this Python does not know yet).
_NONCHARACTERS = {*range(0xFDD0, 0xFDF0)} | {
    plane + last for plane in range(0, 0x110000, 0x10000) for last in (0xFFFE, 0xFFFF)
}
_UNPRINTABLE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Zl", "Zp", "Zs"})


def unprintable_spans() -> Spans:
    """What the running Python's Unicode data says is not printable: a look at each of the 1.1
    million code points, a quarter of a second of CPU."""
    return _spans(
        cp
        for cp in range(0x110000)
        if cp in _NONCHARACTERS
        or (unicodedata.category(chr(cp)) in _UNPRINTABLE_CATEGORIES and cp != 0x20)
    )


# unprintable_spans() of the Unicode data of the Pythons the service runs on, worked out once:
# gunicorn's master would otherwise spend a fifth of its start on it, at every start. 3.11's
# Unicode 14.0 and 3.12's 15.0 differ in one span (15.0 made U+13439..U+1343F format
# characters); 3.13's 15.1 is 15.0's. Another version's is worked out at first use; a unit test
# (tests/unit/api/test_openapi.py) works out the running one's and compares.
_UNICODE_14 = (
    (0x0, 0x1F), (0x7F, 0xA0), (0xAD, 0xAD), (0x600, 0x605), (0x61C, 0x61C),
    (0x6DD, 0x6DD), (0x70F, 0x70F), (0x890, 0x891), (0x8E2, 0x8E2), (0x1680, 0x1680),
    (0x180E, 0x180E), (0x2000, 0x200F), (0x2028, 0x202F), (0x205F, 0x2064), (0x2066, 0x206F),
    (0x3000, 0x3000), (0xD800, 0xF8FF), (0xFDD0, 0xFDEF), (0xFEFF, 0xFEFF), (0xFFF9, 0xFFFB),
    (0xFFFE, 0xFFFF), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x13438), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0x1FFFE, 0x1FFFF), (0x2FFFE, 0x2FFFF), (0x3FFFE, 0x3FFFF), (0x4FFFE, 0x4FFFF),
    (0x5FFFE, 0x5FFFF), (0x6FFFE, 0x6FFFF), (0x7FFFE, 0x7FFFF), (0x8FFFE, 0x8FFFF), (0x9FFFE, 0x9FFFF),
    (0xAFFFE, 0xAFFFF), (0xBFFFE, 0xBFFFF), (0xCFFFE, 0xCFFFF), (0xDFFFE, 0xDFFFF), (0xE0001, 0xE0001),
    (0xE0020, 0xE007F), (0xEFFFE, 0x10FFFF),
)  # fmt: skip
_UNICODE_15 = tuple((a, 0x1343F if a == 0x13430 else b) for a, b in _UNICODE_14)
UNPRINTABLE: dict[str, Spans] = {
    "14.0.0": _UNICODE_14,
    "15.0.0": _UNICODE_15,
    "15.1.0": _UNICODE_15,
}


@cache
def printable_rules() -> tuple[re.Pattern[str], str, str]:
    """A regex that finds a character that is not printable, and the two patterns the document
    says it with: what a printable string matches, and what it must not.

    Worked out on first use (gunicorn's master works it out before it forks its workers), from
    the table of the running Python's Unicode version (``UNPRINTABLE``) where there is one.
    """
    unprintable = UNPRINTABLE.get(unicodedata.unidata_version) or unprintable_spans()
    # The document's, in two parts: none of the characters above, and none of the private use
    # planes 15 and 16 (131,068 characters a generator of values would have to steer around one
    # by one: schemathesis takes 25 times as long). A JSON string cannot hold a lone surrogate
    # (the parser refuses one before any pattern), and a Rust regex cannot name one.
    said = _without(unprintable, 0xD800, 0xDFFF)
    return (
        re.compile(f"[{_class(unprintable)}]"),
        f"^[^{_class(_without(said, 0xF0000, 0x10FFFF))}]*$",
        f"[{_class(_within(said, 0xF0000, 0x10FFFF))}]",
    )


def _printable_schema(schema: JsonDict) -> None:
    _, pattern, planes = printable_rules()
    schema["pattern"] = pattern
    schema["not"] = {"pattern": planes}


def _printable(value: str) -> str:
    if printable_rules()[0].search(value):
        raise ValueError(
            "printable characters only (no control or format characters, line breaks, or"
            " spaces but the space)"
        )
    return value


# The caller's own label, shown in the status record and every callback: never personal data.
Reference = Annotated[
    str,
    Field(min_length=1, max_length=255, json_schema_extra=_printable_schema),
    AfterValidator(_printable),
]


# What some reader takes for the end of a header line: CR and LF, but also VT, FF, FS, GS, RS,
# NEL, U+2028 and U+2029 (Python's str.splitlines() among them), the other C0 and C1 controls
# but TAB, DEL; and lone surrogates, which are not text and cannot be encoded.
_BREAKS = r"\x00-\x08\x0a-\x1f\x7f-\x9f\u2028\u2029"
HEADER_BREAKS = re.compile(rf"[{_BREAKS}\ud800-\udfff]")
ONE_LINE = "one line: no control characters, line or paragraph separators"
ONE_LINE_PATTERN = f"^[^{_BREAKS}]*$"  # as the document says it
A_BREAK = f"[{_BREAKS}]"


def _one_line(value: object) -> object:
    if isinstance(value, str) and HEADER_BREAKS.search(value):
        raise ValueError(f"must be {ONE_LINE}")
    return value


def _ascii_when_it_can_be(address: str) -> str:
    """The ASCII form of an address whose local part is ASCII, as the caller gave it.

    EmailStr turns an IDNA domain into Unicode (``ada@xn--bcher-kva.example`` becomes
    ``ada@bücher.example``), which only a server with SMTPUTF8 takes: an address keeps its ASCII
    form, and needs SMTPUTF8 only when its local part is not ASCII.
    """
    if address.isascii():
        return address
    found = email_validator.validate_email(address, check_deliverability=False)
    return found.ascii_email or found.normalized


def _any_case(word: str) -> str:
    return "".join(f"[{c.upper()}{c}]" if c.isalpha() else re.escape(c) for c in word)


# The domains email-validator refuses whatever the syntax (RFC 6761's special-use names: test,
# local, localhost, invalid, onion, arpa), as the document states it: the address's domain is
# not one of them nor under one.
SPECIAL_USE_DOMAIN = (
    f"[@.](?:{'|'.join(_any_case(d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)})>?$"
)
# A display name ("Ada <ada@example.com>") is accepted and dropped, as EmailStr does; a control
# character anywhere is refused first, so that none can hide in a name.
Address = Annotated[
    EmailStr,
    BeforeValidator(_one_line),
    AfterValidator(_ascii_when_it_can_be),
    Field(json_schema_extra={"not": {"pattern": SPECIAL_USE_DOMAIN}}),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _no_reserved_names(value: dict[str, Any]) -> dict[str, Any]:
    if "self" in value:
        raise ValueError("'self' is the template engine's own name; call the value otherwise")
    return value


# Template variables: any JSON object, less the names a template cannot be given.
TemplateData = Annotated[
    dict[str, Any],
    AfterValidator(_no_reserved_names),
    Field(json_schema_extra={"propertyNames": {"not": {"const": "self"}}}),
]


# RFC 3339's date-time (section 5.6; a space for the T, as its note allows): seconds and a zone,
# Z or an offset with its colon. Pydantic's parser takes more (no seconds, +0800, an underscore).
RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt ][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})"
)


def _rfc3339(value: object) -> object:
    """A JSON string read as RFC 3339 allows, and only so (the datetime it names, for the type's
    own checks); anything else as it is, for them to refuse."""
    if not isinstance(value, str):
        return value
    if RFC3339.fullmatch(value):
        with contextlib.suppress(ValueError):  # a 25th hour, a 61st second: refused below
            return datetime.fromisoformat(value.upper().replace(" ", "T"))
    raise ValueError("must be an RFC 3339 date-time with seconds and a zone (Z or +08:00)")


def _within_reach(value: datetime) -> datetime:
    if value - datetime.now(UTC) > MAX_SCHEDULE_AHEAD:
        raise ValueError("must be at most 30 days ahead")
    return value


def _digits(run: re.Match[str]) -> str:
    n = len(run[0])
    return "[0-9]" if n == 1 else f"[0-9]{{{n}}}"


def _shape(text: str) -> str:
    # Digits and dashes only (dates, counters): nothing that needs escaping in any dialect.
    return re.sub(r"[0-9]+", _digits, text)


def not_above(bound: str) -> str:
    """A regex (unanchored) of the strings shaped as ``bound`` (digits and dashes) whose digits,
    read left to right, are at most its own: ``not_above("2026-12-31")``, the dates up to it."""
    below = [
        bound[:i] + (f"[0-{int(c) - 1}]" if c > "1" else "0") + _shape(bound[i + 1 :])
        for i, c in enumerate(bound)
        if c.isdigit() and c != "0"
    ]
    return f"(?:{'|'.join([*below, bound])})"


def _send_at_bound(schema: dict[str, Any]) -> None:
    # The 30 days the server allows, as a pattern of the calendar dates up to 28 days from now
    # (a zone's offset is less than a day, and a document read later only asks for less).
    latest = (datetime.now(UTC) + MAX_SCHEDULE_AHEAD - timedelta(days=2)).date().isoformat()
    schema["pattern"] = f"^{not_above(latest)}"
    schema["description"] = "RFC 3339 with a zone; past or now sends at once; at most 30 days ahead"


# When to send: now if past, at most 30 days ahead.
SendAt = Annotated[
    AwareDatetime,
    BeforeValidator(_rfc3339),
    AfterValidator(_within_reach),
    Field(json_schema_extra=_send_at_bound),
]
# A subject as the request gives it (a template's is checked once rendered).
Subject = Annotated[
    str,
    Field(min_length=1, max_length=998, json_schema_extra={"pattern": ONE_LINE_PATTERN}),
    BeforeValidator(_one_line),
]


def given(field: str) -> JsonDict:
    """JSON Schema: ``field`` is there and not null."""
    return {"required": [field], "properties": {field: {"not": {"type": "null"}}}}


# A mail's content, as the schema can say it: a template, or a subject with text or HTML.
CONTENT: JsonDict = {"anyOf": [given("template"), {**given("subject"), "anyOf": [given("text"), given("html")]}]}  # fmt: skip


# A named mail: the document lists the names there are (notifier.api.openapi).
TemplateName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


class MailRequest(Strict):
    """``POST /v1/mail``. 1 to 50 recipients in all of to, cc and bcc (the document can say
    at least one, and at most 50 in each); content from a template, or a subject with text or
    HTML; a template's subject, rendered from data, 1 to 998 characters; with unsubscribe, one
    recipient in to and none in cc or bcc."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                {"anyOf": [{"required": [f], "properties": {f: {"minItems": 1}}} for f in ("to", "cc", "bcc")]},
                CONTENT,
                {
                    "if": {"required": ["unsubscribe"], "properties": {"unsubscribe": {"const": True}}},
                    "then": {
                        "required": ["to"],
                        "properties": {"to": {"minItems": 1, "maxItems": 1}, "cc": {"maxItems": 0}, "bcc": {"maxItems": 0}},
                    },
                },
            ]
        }
    )  # fmt: skip

    to: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    cc: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[Address] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    reply_to: Address | None = None
    subject: Subject | None = None
    text: str | None = Field(None, max_length=512 * 1024)
    html: str | None = Field(None, max_length=512 * 1024)
    template: TemplateName | None = None
    data: TemplateData = Field(default_factory=dict)
    send_at: SendAt | None = None
    reference: Reference | None = None
    # Bulk mail (a newsletter sent one by one): the one-click unsubscribe headers, and an
    # unsubscribed recipient is not sent to. One recipient in to, none in cc or bcc.
    unsubscribe: bool = False


MAX_BATCH_ROWS = 10_000


class BatchRow(Strict):
    """One recipient of a batch: their own mail, from the batch's content and this row's data."""

    to: Address
    data: TemplateData = Field(default_factory=dict)
    reference: Reference | None = None


class BatchRequest(Strict):
    """``POST /v1/mail/batch``: content from a template (its subject, rendered from each row's
    data, 1 to 998 characters), or a subject with text or HTML."""

    model_config = ConfigDict(json_schema_extra={"allOf": [CONTENT]})

    template: TemplateName | None = None
    subject: Subject | None = None
    text: str | None = Field(None, max_length=512 * 1024)
    html: str | None = Field(None, max_length=512 * 1024)
    send_at: SendAt | None = None
    reference: Reference | None = None
    recipients: list[BatchRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


def e164(value: str) -> str:
    """A phone number as Notifier keeps it: E.164 (``+86 138 0013 8000`` is ``+8613800138000``);
    ValueError saying why when it is none."""
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        raise ValueError("not a phone number in E.164 form: + and the country code") from None
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _ip(value: str) -> str:
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        raise ValueError("not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id is not None:
        # A zone (fe80::1%eth0) names an interface of the caller's own host: no one's address.
        raise ValueError("an IPv6 address without a zone (%…)")
    return str(address)


PHONE_PATTERN = "[+\uff0b][^0-9\uff10-\uff19]*[0-9\uff10-\uff19]"  # ASCII or full-width
# The document states the shape (a plus sign, then digits; spaces, dashes, dots and brackets may
# come between) and, as the format "phone" (pydantic-extra-types' name), that the number must be
# one the phone-number library knows as valid: no pattern of a sane size can say which are.
Phone = Annotated[
    str,
    Field(
        max_length=32,
        json_schema_extra={
            "format": "phone",
            "description": "a valid number (libphonenumber) with + and its country code",
            # In allOf: schemathesis 4.32 draws nothing for a format with both a pattern and
            # a length beside it (a failed health check), and its fuzz test is this document's.
            "allOf": [{"pattern": PHONE_PATTERN}],
        },
    ),
    AfterValidator(e164),
]
# The formats say it exactly; the pattern says what it can for a validator that takes formats
# for annotations (JSON Schema 2020-12's default): hex digits, colons and dots, no zone.
ClientIp = Annotated[
    str,
    Field(
        max_length=64,
        pattern=r"^[0-9A-Fa-f:.]+$",
        json_schema_extra={"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    ),
    AfterValidator(_ip),
]
Purpose = Annotated[str, Field(pattern=r"^[a-z0-9_-]{1,32}$")]


Locale = Literal["zh-CN", "en"]


def _code(value: object) -> object:
    """A code as the person typed it, as it was sent: full-width digits (a Chinese input
    method's U+FF11 for 1) as ASCII (NFKC), and no spaces (a pasted " 123 456")."""
    if not isinstance(value, str):
        return value
    return "".join(unicodedata.normalize("NFKC", value).split())


Code = Annotated[str, BeforeValidator(_code), Field(min_length=1, max_length=32)]


class _CaptchaAsk(Strict):
    """What a captcha send says by either channel, besides the recipient."""

    purpose: Purpose
    locale: Locale = "zh-CN"
    client_ip: ClientIp | None = None
    reference: Reference | None = None


class CaptchaRequest(_CaptchaAsk):
    """``POST /v1/sms/captcha``."""

    phone: Phone

    @property
    def recipient(self) -> str:
        return self.phone


class MailCaptchaRequest(_CaptchaAsk):
    """``POST /v1/mail/captcha``: the SMS captcha's fields, with an address ``to``."""

    to: Address

    @property
    def recipient(self) -> str:
        return self.to


class _CaptchaCheck(Strict):
    purpose: Purpose
    code: Code


class VerifyRequest(_CaptchaCheck):
    """``POST /v1/sms/captcha/verify``."""

    phone: Phone

    @property
    def recipient(self) -> str:
        return self.phone


class MailVerifyRequest(_CaptchaCheck):
    """``POST /v1/mail/captcha/verify``."""

    to: Address

    @property
    def recipient(self) -> str:
        return self.to


MAX_SMS_TEXT = 1600  # Twilio's longest body, and the contract's


def sms_text_fits(text: str) -> str:
    """``text``, when it is no longer than an SMS may be as Twilio counts (segments.characters:
    an emoji counts two; Twilio refuses a longer one for good, code 21617)."""
    if (length := characters(text)) > MAX_SMS_TEXT:
        raise ValueError(
            f"{length} characters as Twilio counts them (one outside the Basic Multilingual "
            f"Plane, an emoji, counts two); at most {MAX_SMS_TEXT}"
        )
    return text


SmsText = Annotated[
    str, Field(min_length=1, max_length=MAX_SMS_TEXT), AfterValidator(sms_text_fits)
]
# Exactly one of text and template, as the schema can say it.
TEXT_OR_TEMPLATE: JsonDict = {"oneOf": [given("text"), given("template")]}


class SmsRequest(Strict):
    """``POST /v1/sms``: exactly one of ``text`` and ``template`` (a named SMS rendered with
    ``data``); a rendered text 1 to 1,600 characters; the number in a country the deployment
    texts, and served by a provider that can carry what is asked (free text, or that template)."""

    model_config = ConfigDict(json_schema_extra={"allOf": [TEXT_OR_TEMPLATE]})

    to: Phone
    text: SmsText | None = None
    template: TemplateName | None = None
    data: TemplateData = Field(default_factory=dict)
    reference: Reference | None = None
    send_at: SendAt | None = None


class SmsBatchRow(Strict):
    """One recipient of an SMS batch: their own SMS, the batch's template with this row's data."""

    to: Phone
    data: TemplateData = Field(default_factory=dict)
    reference: Reference | None = None


class SmsBatchRequest(Strict):
    """``POST /v1/sms/batch``: one named SMS to each recipient, rendered with each row's data."""

    template: TemplateName
    send_at: SendAt | None = None
    reference: Reference | None = None
    recipients: list[SmsBatchRow] = Field(min_length=1, max_length=MAX_BATCH_ROWS)


QINIU_KEY_BYTES = 750  # Qiniu's limit on a key, in UTF-8 bytes
ONE_KEY: JsonDict = {"not": {"allOf": [given("key"), given("key_prefix")]}}


def _qiniu_key(value: str) -> str:
    if len(value.encode()) > QINIU_KEY_BYTES:
        raise ValueError(f"at most {QINIU_KEY_BYTES} bytes in UTF-8")
    return value


# The document says at most as many characters as bytes; the bytes it cannot count.
QiniuKey = Annotated[
    str,
    Field(
        min_length=1,
        max_length=QINIU_KEY_BYTES,
        description=f"at most {QINIU_KEY_BYTES} bytes in UTF-8",
    ),
    AfterValidator(_qiniu_key),
]
# The keys' rule (notifier.objectkeys), checked for every store by services/uploads.py and stated
# here for the OpenAPI document.
AS_KEY = Field(json_schema_extra={"pattern": objectkeys.KEY_PATTERN})
AS_PREFIX = Field(json_schema_extra={"pattern": objectkeys.PREFIX_PATTERN})


def _integral(value: object) -> object:
    # JSON has one kind of number, and JSON Schema's "integer" is any number without a
    # fraction: 1410.0 is the integer 1410. Anything else still meets the strict int check.
    return int(value) if isinstance(value, float) and value.is_integer() else value


Integer = Annotated[int, BeforeValidator(_integral)]


# No white space (Unicode's White_Space, spelled out: a reader's \s is another dialect's).
_WHITE = r"\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000"
CALLBACK_URL = rf"^https?://[^{_WHITE}]+$"
# What the server then holds each URL of a ";" list to (providers/qiniu.py, in Qiniu's order of
# fallbacks), as the document says it: a host after any user info and before any port (the
# server's own check names a bracketed IPv6 host's faults; the document admits none).
# Python's urlsplit, which the server reads them with, refuses a netloc holding "[" or "]" but as
# an IPv6 host, or a character whose NFKC form holds one of "/?#@:" (its _checknetloc).
# (Those are NFKC_NETLOC; a test computes them again from unicodedata.)
NFKC_NETLOC = (
    0x2047, 0x2048, 0x2049, 0x2100, 0x2101, 0x2105, 0x2106, 0x2A74, 0xFE13, 0xFE16,
    0xFE55, 0xFE56, 0xFE5F, 0xFE6B, 0xFF03, 0xFF0F, 0xFF1A, 0xFF1F, 0xFF20,
)  # fmt: skip
_NETLOC_NOT = r"\[\]" + _ranges(list(NFKC_NETLOC))
_URL_PART = (
    rf"https?://(?:[^{_WHITE};/?#@{_NETLOC_NOT}]*@)?[^{_WHITE};/?#@:{_NETLOC_NOT}]+"
    rf"(?::[^{_WHITE};/?#@{_NETLOC_NOT}]*)?(?:[/?#][^{_WHITE};]*)?"
)
CALLBACK_URLS: JsonDict = {"pattern": rf"^{_URL_PART}(;{_URL_PART})*$"}


class UploadTokenRequest(Strict):
    """``POST /v1/uploads/qiniu/token`` (and the ``qiniu_uptoken`` task's keyword arguments):
    ``key`` or ``key_prefix``, not both; ``callback_url`` and ``callback_body`` together."""

    model_config = ConfigDict(
        json_schema_extra={
            "allOf": [
                ONE_KEY,
                {"if": given("callback_url"), "then": given("callback_body")},
                {"if": given("callback_body"), "then": given("callback_url")},
            ]
        }
    )

    bucket: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$")
    key: Annotated[QiniuKey, AS_KEY] | None = None
    key_prefix: Annotated[QiniuKey, AS_PREFIX] | None = None
    expires_in: Integer = Field(3600, ge=60, le=86400)
    insert_only: bool = False
    # The bounds before the validator: after it, pydantic can only put them in the document.
    # At most an int64, as Qiniu reads the policy (1e300 made a token Qiniu refuses).
    fsize_limit: Annotated[int, Field(ge=1, le=2**63 - 1), BeforeValidator(_integral)] | None = None
    mime_limit: str | None = Field(None, min_length=1, max_length=512)
    callback_url: str | None = Field(
        None, pattern=CALLBACK_URL, max_length=2048, json_schema_extra=CALLBACK_URLS
    )
    callback_body: str | None = Field(None, min_length=1, max_length=4096)
    return_body: str | None = Field(None, min_length=1, max_length=4096)


S3_KEY_BYTES = 1024  # S3's limit on a key, in UTF-8 bytes
MAX_S3_POST = 5 * 1024**3  # the largest object one POST may upload (5 GiB)


OSS_KEY_BYTES = 1023  # Aliyun OSS's limit on an object's name, in UTF-8 bytes
COS_KEY_BYTES = 850  # Tencent COS's limit on an object key, in UTF-8 bytes ("Object Overview")


def _form_key(limit: int, *, dollar: bool = True) -> Callable[[str], str]:
    """The check of a form's key (or prefix) in a store whose keys are at most ``limit`` bytes;
    without ``dollar``, one whose policy cannot hold a ``$`` in a key (S3's)."""

    def check(value: str) -> str:
        if len(value.encode()) > limit:
            raise ValueError(f"at most {limit} bytes in UTF-8")
        if "${filename}" in value:
            # The store puts the uploaded file's name there: the key would be the browser's.
            raise ValueError("must not hold ${filename}; give key_prefix for keys the page chooses")
        if not dollar and "$" in value:
            # S3 reads a policy condition's $ as its own (AWS: "\$" escapes it, which boto3 and
            # the other SDKs do not write): a key with $$ is refused at the upload (boto3#4514).
            raise ValueError("must not hold $ (S3's POST policy cannot match it)")
        return _printable(value)

    return check


def _key_schema(*, dollar: bool) -> Callable[[JsonDict], None]:
    def document(schema: JsonDict) -> None:
        # In allOf, so that the keys' own pattern (AS_KEY, AS_PREFIX) stands beside it.
        _, pattern, planes = printable_rules()
        schema["allOf"] = [
            {"pattern": pattern},
            {"not": {"pattern": planes}},
            {"not": {"pattern": r"\$\{filename\}" if dollar else r"\$"}},
        ]

    return document


def _form_key_field(limit: int, *, dollar: bool = True) -> Any:
    """What the document says of a form's key in a store whose keys are at most ``limit`` bytes
    (``_form_key`` checks the bytes, which it cannot count)."""
    return Field(
        min_length=1,
        max_length=limit,
        description=f"at most {limit} bytes in UTF-8, printable" + ("" if dollar else ", no $"),
        json_schema_extra=_key_schema(dollar=dollar),
    )


S3Key = Annotated[
    str,
    _form_key_field(S3_KEY_BYTES, dollar=False),
    AfterValidator(_form_key(S3_KEY_BYTES, dollar=False)),
]
# Cloud Storage's object names are S3's 1,024 bytes, and its policy takes a $ as written.
GcsKey = Annotated[str, _form_key_field(S3_KEY_BYTES), AfterValidator(_form_key(S3_KEY_BYTES))]
OssKey = Annotated[str, _form_key_field(OSS_KEY_BYTES), AfterValidator(_form_key(OSS_KEY_BYTES))]
CosKey = Annotated[str, _form_key_field(COS_KEY_BYTES), AfterValidator(_form_key(COS_KEY_BYTES))]
# A media type ("image/png"), or a whole type ("image/*").
MEDIA_TYPE = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}/([A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}|\*)$"


class S3UploadRequest(Strict):
    """``POST /v1/uploads/s3/token`` (and the ``s3_upload_form`` task's keyword arguments):
    ``key`` or ``key_prefix``, not both."""

    model_config = ConfigDict(json_schema_extra={"allOf": [ONE_KEY]})

    # S3's bucket names: 3 to 63 lower-case letters, digits, dots and hyphens.
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
    key: Annotated[S3Key, AS_KEY] | None = None
    key_prefix: Annotated[S3Key, AS_PREFIX] | None = None
    expires_in: Integer = Field(3600, ge=60, le=86400)
    # Media types are case-insensitive (RFC 6838) and browsers give a file's in lower case: a
    # policy's starts-with "Image/" would refuse every upload.
    content_type: Annotated[str, Field(pattern=MEDIA_TYPE), AfterValidator(str.lower)] | None = None
    max_size: Integer = Field(5 * 1024 * 1024, ge=1, le=MAX_S3_POST)


class OssUploadRequest(S3UploadRequest):
    """``POST /v1/uploads/oss/token``: the S3 route's body, with Aliyun OSS's names."""

    # OSS's bucket names: 3 to 63 lower-case letters, digits and hyphens (no dots, unlike S3's).
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
    key: Annotated[OssKey, AS_KEY] | None = None
    key_prefix: Annotated[OssKey, AS_PREFIX] | None = None


class CosUploadRequest(S3UploadRequest):
    """``POST /v1/uploads/cos/token``: the S3 route's body, with Tencent COS's names; its bucket
    names end in the account's APPID (``avatars-1250000000``)."""

    # Lower-case letters, digits and hyphens, "-", then the APPID's digits; one DNS label in all
    # (the bucket is the first label of COS's host name).
    bucket: str = Field(pattern=r"^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?-[0-9]{5,}$", max_length=63)
    key: Annotated[CosKey, AS_KEY] | None = None
    key_prefix: Annotated[CosKey, AS_PREFIX] | None = None


class GcsUploadRequest(S3UploadRequest):
    """``POST /v1/uploads/gcs/token``: the S3 route's body, with Cloud Storage's bucket names
    (its object names are S3's 1,024 bytes)."""

    # 3 to 63 lower-case letters, digits, "-", "_" and ".", a letter or digit at each end.
    bucket: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,61}[a-z0-9]$")
    key: Annotated[GcsKey, AS_KEY] | None = None
    key_prefix: Annotated[GcsKey, AS_PREFIX] | None = None


class S3UploadForm(BaseModel):
    """The answer with an upload form: ``200 OK``. POST ``fields`` and then the file (last) to
    ``url`` as ``multipart/form-data``."""

    url: str
    fields: dict[str, str]
    bucket: str
    key: str | None
    expires_at: str


class UploadToken(BaseModel):
    """The answer with a token: ``200 OK``."""

    token: str
    bucket: str
    key: str | None
    expires_at: str
    upload_url: str


class Links(BaseModel):
    self: str


class Accepted(BaseModel):
    """The answer to a send: ``202 Accepted``."""

    id: str
    status: Literal["queued", "scheduled"]
    links: Links


class CaptchaAccepted(Accepted):
    """The answer to a captcha send: ``202 Accepted``."""

    expires_in: int
    resend_after: int


class VerifyResult(BaseModel):
    """The answer to a verify: ``{"valid": true}`` or why not."""

    valid: bool
    reason: Literal["mismatch", "expired", "too_many_attempts"] | None = None
    attempts_left: int | None = None


class SoftBounce(BaseModel):
    """A DSN that says the recipient's server defers the mail and its MTA is still trying
    (``Action: delayed``), or a mail provider's event that says as much (a transient bounce,
    a delay, a block): the last one a notification got."""

    status: str  # the DSN's, 4.2.2 (a provider's event: its status, or the kind of delay)
    diagnostic: str  # the remote server's reply, addresses masked
    at: str  # when Notifier took it (a provider's event: when the provider saw it), RFC 3339


class Complaint(BaseModel):
    """A recipient marked the mail as spam, as the mail provider reported it: the first such
    report a notification got."""

    type: str | None  # the feedback type (RFC 5965: abuse, fraud, virus, other...), if known
    at: str  # when the provider took the complaint, RFC 3339


class Notification(BaseModel):
    """The status record of one notification, as ``GET /v1/notifications/<id>`` shows it.

    The store keeps and returns these; ``client`` (whose it is) is never shown. Recipients and
    content are not part of it.
    """

    id: str
    client: str = Field(exclude=True)
    kind: Literal["mail", "sms_captcha", "sms"]
    status: Status
    attempts: int
    provider: str | None
    error: str | None
    created_at: str
    updated_at: str
    send_at: str | None
    reference: str | None
    provider_ref: str | None
    # A test key's captcha only: its code, for the integrator's login test. Never for a live
    # key, whose records do not have the field at all.
    test_code: str | None = None
    # A sent mail's last soft bounce; records without one do not have the field.
    soft_bounce: SoftBounce | None = None
    # An SMS's parts (kind sms only): its text's, counted as Twilio counts them; null when it
    # has no text of ours (a template only a provider's console holds the words of).
    segments: int | None = None
    # A sent mail's first complaint; records without one do not have the field.
    complaint: Complaint | None = None

    def public(self) -> dict[str, Any]:
        """The record as the API shows it: ``test_code``, ``soft_bounce`` and ``complaint`` only
        where there is one, ``segments`` only for an SMS."""
        shown = self.model_dump()
        for optional in ("test_code", "soft_bounce", "complaint"):
            if shown[optional] is None:
                del shown[optional]
        if self.kind != "sms":
            del shown["segments"]
        return shown


BatchStatus = Literal["scheduled", "queued", "sending", "done", "cancelled"]


class BatchAccepted(BaseModel):
    """The answer to a batch: ``202 Accepted``."""

    id: str
    status: Literal["queued", "scheduled"]
    total: int
    links: Links


class Batch(BaseModel):
    """A batch as ``GET /v1/batches/<id>`` shows it: counts per status, kept as rows move."""

    id: str
    client: str = Field(exclude=True)
    test: bool = Field(False, exclude=True)  # a test key's: its rows are simulated
    kind: Literal["mail", "sms"] = Field("mail", exclude=True)  # its rows' kind
    status: BatchStatus
    total: int
    counts: dict[str, int]
    reference: str | None
    created_at: str
    updated_at: str
    send_at: str | None


class BatchItem(BaseModel):
    """One row of a batch in a page of ``GET /v1/batches/<id>/notifications``: never its
    recipient."""

    id: str
    status: Status
    reference: str | None
    error: str | None


class BatchPage(BaseModel):
    """A page of a batch's notifications; ``next`` is the cursor of the next page, if any."""

    items: list[BatchItem]
    next: str | None


class ReceiptPush(RootModel[list[dict[str, Any]]]):
    """A provider's push of delivery receipts (Aliyun, Tencent): a JSON array of objects, each a
    receipt; what a receipt holds is the provider's (read by notifier.services.receipts)."""


class ReceiptAck(BaseModel):
    """The answer to a provider's delivery receipt: what it did to the notification."""

    # moved; early (kept until the send is recorded); unknown; ignored (not a final status);
    # of mail events: noted (something new, the status as it was), duplicate (nothing new),
    # confirmed (an SNS subscription);
    # or the status that left nothing to move (delivered twice, a late sent).
    outcome: str


class AliyunReceiptAck(BaseModel):
    """Aliyun's expected answer to its SmsReport push, or to its GET check (``code`` 0: taken)."""

    code: int
    msg: str


class TencentReceiptAck(BaseModel):
    """Tencent's expected answer to its status callback push (``result`` 0: taken)."""

    result: int
    errmsg: str


SuppressionReason = Literal["bounced", "manual", "complained", "unsubscribed"]


class SuppressionRequest(Strict):
    """``POST /v1/suppressions``: stop mail to an address (``manual``: all of it)."""

    address: Address
    reason: SuppressionReason = "manual"


class Suppression(BaseModel):
    """One entry of a client's suppression list."""

    address: str
    reason: SuppressionReason
    created_at: str


class SuppressionPage(BaseModel):
    """A page of a client's suppression list; ``next`` is the cursor of the next page."""

    items: list[Suppression]
    next: str | None


class ProblemError(BaseModel):
    """One field at fault."""

    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """Every error: ``application/problem+json`` (RFC 9457)."""

    type: str
    title: str
    status: int
    detail: str
    errors: list[ProblemError]


class Health(BaseModel):
    """``/healthz`` and ``/readyz`` when all is well."""

    status: Literal["ok", "ready"]

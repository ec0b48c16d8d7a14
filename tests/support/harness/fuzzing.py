"""Schemathesis hooks for fuzzing Notifier from its OpenAPI document (``schemathesis.toml``).

The document states every bound it can in JSON Schema. Three it states only in words, and a
generator must be told them, as any JSON Schema tool must be told what a ``format`` means:

- ``format: phone``: a number the phone-number library knows as valid, in a country the
  deployment texts (``NOTIFIER_SMS_ALLOWED_COUNTRIES``) and outside its blocked ranges
  (``NOTIFIER_SMS_BLOCKED_PREFIXES``), read from the environment as the service reads them;
- at most 50 recipients in all of ``to``, ``cc`` and ``bcc`` (the document says 50 in each);
- a named mail's subject, rendered from the request's data, at most 998 characters; a named
  SMS's text, rendered so, at most 1,600; and an upload key at most its store's limit in UTF-8
  bytes (the document counts characters).

(That a provider for the number can carry the SMS is said in words too; the stack's providers,
Twilio for every number, carry every text and every named SMS with one.)

Requests the document allows that break one of these are not sent as valid ones; every other
request is, so schemathesis' ``positive_data_acceptance`` (ST202) holds the document to the
server. One bound the document states is read in another form that says the same
(``before_load_schema``): schemathesis draws it ten times faster. Named by ``schemathesis.toml`` beside this module, which the fuzz test and the
README's command use.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import phonenumbers
import schemathesis
from hypothesis import strategies as st
from phonenumbers import PhoneNumberType

from notifier.errors import TemplateError
from notifier.schemas import (
    COS_KEY_BYTES,
    MAX_RECIPIENTS,
    MAX_SMS_TEXT,
    OSS_KEY_BYTES,
    QINIU_KEY_BYTES,
    S3_KEY_BYTES,
)
from notifier.segments import characters
from notifier.templating import MailTemplates, NamedSms, folders

MAX_SUBJECT = 998
KEY_BYTES = {"POST /v1/uploads/qiniu/token": QINIU_KEY_BYTES, "POST /v1/uploads/s3/token": S3_KEY_BYTES,
             "POST /v1/uploads/oss/token": OSS_KEY_BYTES, "POST /v1/uploads/cos/token": COS_KEY_BYTES,
             "POST /v1/uploads/gcs/token": S3_KEY_BYTES}  # fmt: skip


def _listed(variable: str) -> list[str]:
    return [item.strip() for item in os.environ.get(variable, "").split(",") if item.strip()]


REGIONS = sorted(
    {r.upper() for r in _listed("NOTIFIER_SMS_ALLOWED_COUNTRIES")} or phonenumbers.SUPPORTED_REGIONS
)


def _number(region: str, kind: int, last: int) -> str | None:
    """A number of ``region`` and ``kind``: its example number with other last four digits."""
    example = phonenumbers.example_number_for_type(region, kind)
    if example is None:
        return None
    national = str(example.national_number)
    return f"+{example.country_code}{national[:-4]}{last:04d}"


def _texted(number: object) -> bool:
    """Whether ``number`` is one the deployment texts: valid, allowed, not in a blocked range."""
    if not isinstance(number, str):
        return False
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    e164 = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return (
        phonenumbers.is_valid_number(parsed)
        and phonenumbers.region_code_for_number(parsed) in REGIONS
        and not any(e164.startswith(p) for p in _listed("NOTIFIER_SMS_BLOCKED_PREFIXES"))
    )


PHONES = st.builds(
    _number,
    st.sampled_from(REGIONS),
    st.sampled_from([PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE]),
    st.integers(0, 9999),
).filter(_texted)
schemathesis.openapi.format("phone", PHONES)

_templates_dir = os.environ.get("NOTIFIER_TEMPLATES_DIR")
TEMPLATES = MailTemplates(folders("mail", Path(_templates_dir) if _templates_dir else None))
NAMED_SMS = NamedSms(folders("sms", Path(_templates_dir) if _templates_dir else None))


def _text_fits(template: Any, data: Any) -> bool:
    """Whether the text a named SMS renders from ``data`` fits, if it is rendered."""
    if not isinstance(template, str) or not isinstance(data, dict):
        return True  # free text, or refused by the document itself
    try:
        text = NAMED_SMS.render(template, data).text
    except TemplateError:
        return True  # the document's to say
    return text is None or 1 <= characters(text) <= MAX_SMS_TEXT


def _subject_fits(body: dict[str, Any], data: Any) -> bool:
    """Whether the subject a named mail renders from ``data`` fits, if it is rendered."""
    template = body.get("template")
    if body.get("subject") is not None or not isinstance(template, str):
        return True  # the request's own subject, or not a named mail
    if not isinstance(data, dict):
        return True  # refused by the document itself
    try:
        subject = TEMPLATES.render(template, data).subject
    except TemplateError:
        return True  # the document's to say (a template that needs other data)
    return subject is None or len(subject) <= MAX_SUBJECT


def within_words(label: str, body: Any) -> bool:
    """Whether a request ``body`` to ``label`` keeps the rules the document states in words."""
    if not isinstance(body, dict):
        return True
    if "phone" in body and not _texted(body["phone"]):
        return False  # the coverage phase draws from the pattern, not from the format
    text = body.get("text")
    sms = isinstance(text, str) and label.startswith("POST /v1/sms")
    if sms and characters(str(text)) > MAX_SMS_TEXT:
        return False  # an emoji counts two, as Twilio counts: the document says so in words
    if label == "POST /v1/sms":
        return _texted(body.get("to")) and _text_fits(body.get("template"), body.get("data", {}))
    if label == "POST /v1/sms/batch":
        texts = body.get("recipients")
        return all(
            _texted(row.get("to")) and _text_fits(body.get("template"), row.get("data", {}))
            for row in (texts if isinstance(texts, list) else [])
            if isinstance(row, dict)
        )
    if label == "POST /v1/mail":
        recipients = [body.get(f) for f in ("to", "cc", "bcc")]
        if sum(len(r) for r in recipients if isinstance(r, list)) > MAX_RECIPIENTS:
            return False
        return _subject_fits(body, body.get("data", {}))
    if label == "POST /v1/mail/batch":
        rows = body.get("recipients")
        rows = rows if isinstance(rows, list) else []
        return all(
            _subject_fits(body, row.get("data", {})) for row in rows if isinstance(row, dict)
        )
    if label in KEY_BYTES:
        keys = [body.get(f) for f in ("key", "key_prefix")]
        return all(len(k.encode()) <= KEY_BYTES[label] for k in keys if isinstance(k, str))
    return True


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case[Any]) -> bool:
    """Keep a valid case only if it keeps the rules the document states in words."""
    meta = case.meta
    if meta is not None and not meta.generation.mode.is_positive:
        return True
    return within_words(case.operation.label, case.body)


# A character class repeated (``^[0-9A-Fa-f:.]+$``, client_ip's beside its formats ipv4 and
# ipv6) allows the same strings as at least one character and none outside the class. The
# coverage phase draws a string from the pattern until the formats take one, which hex digits,
# colons and dots at random almost never make (10 s of CPU an operation); from the formats,
# then the "not", it draws an address at once.
_REPEATED_CLASS = re.compile(r"\^\[([^\]^][^\]]*)\]\+\$")


def _one_class_as_not(schema: Any) -> None:
    if isinstance(schema, list):
        for item in schema:
            _one_class_as_not(item)
        return
    if not isinstance(schema, dict):
        return
    repeated = _REPEATED_CLASS.fullmatch(str(schema.get("pattern", "")))
    if repeated and "anyOf" in schema and "not" not in schema:
        del schema["pattern"]
        schema["minLength"] = max(1, schema.get("minLength", 0))
        schema["not"] = {"pattern": f"[^{repeated[1]}]"}
    for value in schema.values():
        _one_class_as_not(value)


@schemathesis.hook
def before_load_schema(context: schemathesis.HookContext, raw_schema: dict[str, Any]) -> None:
    """Say a repeated character class beside formats in the form drawn from at once."""
    _one_class_as_not(raw_schema)

"""Mask personal data in free text (log lines, provider error messages, Celery's log extras).

Addresses are found by their shape, ``local@domain``, whatever the characters: a server that
refuses ``用户@例子.中国`` quotes it back as it is, or as the escapes of a ``bytes`` repr.
"""

from __future__ import annotations

import re
from urllib.parse import unquote

# What cannot be part of an unquoted local part as it shows in text: space, the delimiters
# around an address in a header, a reply or a repr (<>, (), [], quotes), and the separators.
_OUTSIDE = r"""\s<>()\[\],;:@"'`"""
# A domain label: letters and digits of any script, hyphens, or a repr's escapes of them.
_LABEL = r"(?:[^\W_]|-|\\x[0-9a-fA-F]{2}|\\u[0-9a-fA-F]{4}|\\U[0-9a-fA-F]{8})+"
_DOTS = "[.\u3002\uff0e\uff61]"  # the full stops IDNA reads as dots
_EMAIL = re.compile(
    rf"""(?: "(?P<quoted>(?:[^"\\\r\n]|\\.)*)"       # a quoted local part
           | (?<![^{_OUTSIDE}])(?P<atom>[^{_OUTSIDE}]++) # or a run of anything else, whole
         )
         @(?P<domain>{_LABEL}(?:{_DOTS}{_LABEL})*|\[[^\]\s]*\])""",
    re.VERBOSE,
)
# A number in international form, written with or without separators: +8613800138000,
# +86 138 0013 8000, +1 (415) 555-0100.
_PHONE = re.compile(r"[+\uff0b](?:\d[ \t.\-()/\u00a0]{0,2}){6,14}\d(?!\d)")
_DIGIT = re.compile(r"\d")
# Tokens in URLs: every query value (the receipt and bounce routes' ``?token=``), and the
# one-click unsubscribe link's path segment.
_QUERY_VALUE = re.compile(r"([?&][^=&#]*=)[^&#]*")
_TOKEN_PATH = re.compile(r"(/unsubscribe/)[^/?#]+")
# The same in free text, where a URL ends at a space: an error that quotes the URL it failed
# on ("Max retries exceeded with url: /cb?key=…", an SNS SubscribeURL's Token).
_TEXT_QUERY_VALUE = re.compile(r"([?&][\w.~%-]+=)[^&#\s]+")
# A + or @ percent-encoded, as a URL in an error writes a number or an address.
_ENCODED_MARK = re.compile(r"%(?:2[bB]|40)")


def redact(text: str) -> str:
    """``ada@example.com`` → ``a***@example.com``; ``+8613800138000`` → ``+86*********00``.
    What a client may read (a stored error, a bounce's diagnostic) keeps the rest as it is:
    ``https://support.google.com/mail/?p=NoSuchUser`` says why a mail was refused."""
    return _PHONE.sub(_mask_phone, _EMAIL.sub(_mask_email, text))


def scrub(text: str) -> str:
    """Free text bound for logs, traces and Sentry: :func:`redact`, and a URL's query values and
    unsubscribe token masked, ``%2B8613800138000`` read as the number it is (an error that quotes
    the URL it failed on: "Max retries exceeded with url: /cb?key=…")."""
    text = _TEXT_QUERY_VALUE.sub(r"\1[redacted]", text)
    text = _ENCODED_MARK.sub(lambda m: unquote(m[0]), _TOKEN_PATH.sub(r"\1[redacted]", text))
    return redact(text)


def redact_url(url: str) -> str:
    """A URL (or path, or ``?query``) with its query values and tokens masked, and redacted:
    read as it is meant (percent-decoded), since a raw request target writes an address in a
    path as ``ada%40example.com`` and a number as ``%2B8613800138000``."""
    # Values and tokens masked as written (decoded first, an encoded # or & in a value would end
    # it early); then read decoded, twice for an address encoded twice (%2540).
    masked = _QUERY_VALUE.sub(r"\1[redacted]", _TOKEN_PATH.sub(r"\1[redacted]", url))
    path, mark, query = unquote(unquote(masked)).partition("?")
    # Segment by segment: an address's local part may hold a /, and would take the path in.
    return "/".join(map(redact, path.split("/"))) + mark + redact(query)


def redact_query(query: str) -> str:
    """A query string without its ``?`` (``token=abc&x=1``), every value masked."""
    return redact_url(f"?{query}")[1:]


def mask_recipient(recipient: str) -> str:
    """One recipient as a person may see it: ``a***@example.com`` (``***@example.com`` for a
    local part of one character, which its first would give away); ``+86138****8000``
    (the country code and a few digits after it, and up to the last four, with at least four
    hidden: ``+****567`` for a seven-digit number)."""
    if "@" in recipient:
        local, _, domain = recipient.rpartition("@")
        return f"{_local_shown(local)}***@{domain}"
    digits = recipient.removeprefix("+")
    if len(digits) <= 4:
        return "+" + "*" * len(digits)
    start = min(5, max(0, len(digits) - 8))
    tail = min(4, len(digits) - 4)
    return f"+{digits[:start]}{'*' * (len(digits) - start - tail)}{digits[-tail:]}"


def _local_shown(local: str) -> str:
    """What a masked address shows of its local part: its first character, unless that is all."""
    return local[:1] if len(local) > 1 else ""


def _mask_email(match: re.Match[str]) -> str:
    local = match["atom"] if match["quoted"] is None else match["quoted"]
    return f"{_local_shown(local)}***@{match['domain']}"


def _mask_phone(match: re.Match[str]) -> str:
    digits = [m.start() for m in _DIGIT.finditer(match[0])]
    hidden = set(digits[2:-2])  # the country code's first digits and the last two stay
    return "".join("*" if i in hidden else c for i, c in enumerate(match[0]))

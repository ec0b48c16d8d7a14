"""Object keys of upload forms, read as paths: what a key or a key prefix may be, and what a
client's prefix confines.

A store keeps a key as a flat string, but what serves it often does not: an S3-compatible
server, a CDN or an HTTP client on the way resolves ``..`` and ``.`` segments, merges ``//``,
drops a leading ``/`` or reads ``\\`` as ``/``, so ``u/beta/../../alpha/x`` is fetched as
``alpha/x``. So a key (or a prefix) with an empty, ``.`` or ``..`` segment (written plainly or
percent-encoded, ``%2e%2e``: a URL made by pasting the key in is decoded before it is resolved),
a percent-encoded separator (``%2f``, ``%5c``: ``u/beta/..%2f..%2falpha/x`` is one segment here
and ``alpha/x`` once decoded and resolved) or an encoded ``%`` (``%25``, which a second decoding
makes into either), a leading ``/``, a backslash or a control character is refused, and a
prefix confines keys segment by segment:
``u/beta`` holds ``u/beta/x``, never ``u/betax/y``. A prefix's one trailing ``/`` is not an
empty segment: ``u/beta`` and ``u/beta/`` are the same prefix, signed as ``u/beta/``.

One rule for every store: :func:`notifier.services.uploads.mint_upload` applies it to each
request before the bucket or the client's prefix is looked at. The patterns state it in the
OpenAPI document (ECMAScript syntax, as JSON Schema reads it); a test holds them to :func:`fault`.
"""

from __future__ import annotations

import re
import unicodedata

# Not a key: a leading "/"; "//" (an empty segment); a "." or ".." segment; a backslash or a
# control character (Unicode's Cc: C0, DEL, C1). A key ends in a segment, a prefix may end in "/".
_DOTS = r"(?:\.|%2[eE]){1,2}"  # a "." or ".." segment, any of its dots percent-encoded
_ENCODED = r"%(?:2[fF]|5[cC]|25)"  # a "/", a "\\" or a "%", percent-encoded
_SEGMENTS = r"^(?!/)(?!.*//)(?!.*" + _ENCODED + r")(?!(?:.*/)?" + _DOTS + r"(?:/|$))"
_CHARACTERS = r"[^\\\x00-\x1f\x7f-\x9f]+$"
KEY_PATTERN = _SEGMENTS + r"(?!.*/$)" + _CHARACTERS
PREFIX_PATTERN = _SEGMENTS + _CHARACTERS


def fault(value: str, *, prefix: bool = False) -> str | None:
    """Why ``value`` cannot be a key (with ``prefix``, a key prefix); None when it can."""
    if value.startswith("/"):
        return "must not start with /"
    if "\\" in value:
        return "must not hold a backslash"
    if any(unicodedata.category(c) == "Cc" for c in value):
        return "must not hold a control character"
    if re.search(_ENCODED, value):
        return "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)"
    path = value.removesuffix("/") if prefix else value
    if any(not segment or re.fullmatch(_DOTS, segment) for segment in path.split("/")):
        return "must not have an empty, . or .. segment"
    return None


def segments(value: str) -> tuple[str, ...]:
    """The segments of a key, or of a prefix (whose one trailing "/" ends its last)."""
    return tuple(value.removesuffix("/").split("/"))


def folder(prefix: str) -> str:
    """A prefix as it is signed: ending in "/", so that it holds only whole segments."""
    return prefix if prefix.endswith("/") else prefix + "/"


def within(value: str, prefix: str, *, is_prefix: bool = False) -> bool:
    """Whether key ``value`` lies under ``prefix``, segment by segment (a prefix ``value`` may
    also be ``prefix`` itself); both already free of :func:`fault`."""
    inner, outer = segments(value), segments(prefix)
    deeper = len(inner) >= len(outer) if is_prefix else len(inner) > len(outer)
    return deeper and inner[: len(outer)] == outer

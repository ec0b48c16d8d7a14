"""Keys of upload forms read as paths: the rule, what a prefix confines, and the OpenAPI
document's patterns held to the rule."""

from __future__ import annotations

import re

import jsonschema_rs
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from notifier.objectkeys import KEY_PATTERN, PREFIX_PATTERN, fault, folder, within


@pytest.mark.parametrize(
    ("value", "as_key", "as_prefix"),
    [
        ("u/42.png", None, None),
        ("u/.well/known..png", None, None),  # dots inside a name are a name
        ("u/", "must not have an empty, . or .. segment", None),  # a prefix's one "/"
        ("u//", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("../x", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("u/./x", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("u/..", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        # Percent-encoded: a URL made by pasting the key in is decoded, then resolved.
        ("u/%2e%2e/x", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("u/.%2E/x", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("u/%2e", "must not have an empty, . or .. segment", "must not have an empty, . or .. segment"),
        ("u/%2e%2e%2e", None, None),  # three dots are a name, as "..." is
        ("u/a%2eb.png", None, None),
        # An encoded separator: one segment here, a climb out of u/beta once decoded and resolved.
        ("u/beta/..%2f..%2falpha/x", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)"),
        ("u/beta/..%5C..%5Calpha", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)"),
        ("u/%252e%252e/x", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)", "must not hold a percent-encoded /, \\ or % (%2F, %5C, %25)"),
        ("u/100%off.png", None, None),
        ("/u", "must not start with /", "must not start with /"),
        ("u\\x", "must not hold a backslash", "must not hold a backslash"),
        ("u\tx", "must not hold a control character", "must not hold a control character"),
        ("u\x9fx", "must not hold a control character", "must not hold a control character"),
    ],
)  # fmt: skip
def test_the_rule(value: str, as_key: str | None, as_prefix: str | None) -> None:
    assert (fault(value), fault(value, prefix=True)) == (as_key, as_prefix)


def test_a_prefix_confines_whole_segments() -> None:
    assert folder("u/beta") == folder("u/beta/") == "u/beta/"
    for prefix in ("u/beta", "u/beta/"):
        assert within("u/beta/x", prefix)
        assert not within("u/betax/y", prefix)
        assert not within("u/beta", prefix)
        assert within("u/beta", prefix, is_prefix=True)
        assert within("u/beta/sub/", prefix, is_prefix=True)
        assert not within("u/bet", prefix, is_prefix=True)
        assert not within("u", prefix, is_prefix=True)


# Strings made of what the rule looks at, and something of everything else.
PATHS = st.lists(
    st.sampled_from(
        ["a", "é", ".", "/", "\\", "\x00", "\x1f", "\x85", " ", "%", "%2e", "%2F", "%5c", "%25"]
    )
).map("".join)


# JSON Schema reads ECMAScript patterns (jsonschema-rs, as schemathesis does); Python's re too.
DOCUMENTED = [
    (pattern, jsonschema_rs.validator_for({"type": "string", "pattern": pattern}), prefix)
    for pattern, prefix in ((KEY_PATTERN, False), (PREFIX_PATTERN, True))
]


@settings(max_examples=1000, deadline=None)
@given(value=PATHS)
@example(value="u/")
@example(value="a\n")
def test_the_documents_patterns_say_what_the_rule_says(value: str) -> None:
    for pattern, schema, prefix in DOCUMENTED:
        allowed = bool(value) and fault(value, prefix=prefix) is None
        assert schema.is_valid(value) == allowed, (pattern, value)
        assert (re.fullmatch(pattern, value) is not None) == allowed, (pattern, value)

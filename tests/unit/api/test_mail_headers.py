"""Header fields of POST /v1/mail: one line each, addresses in the form the caller gave."""

from __future__ import annotations

from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.support.harness.api import MAIL, assert_problem, error_locs, post, queued_messages

# What some reader takes for a line break besides CR and LF, and NUL and DEL.
BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\x7f"]
BREAK_IDS = [f"U+{ord(c):04X}" for c in BREAKS]


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_a_subject_with_a_line_break_or_control_is_422(
    app: Flask, client: FlaskClient, brk: str
) -> None:
    response = post(client, {**MAIL, "subject": f"Hi{brk}X-Injected: yes"})
    body = assert_problem(response, 422)
    assert ["body", "subject"] in error_locs(body)
    assert queued_messages(app) == []


def test_a_form_feed_cannot_smuggle_a_bcc(app: Flask, client: FlaskClient) -> None:
    body = assert_problem(post(client, {**MAIL, "subject": "Hi\u000cBcc: x@example.com"}), 422)
    assert ["body", "subject"] in error_locs(body)
    assert queued_messages(app) == []


@pytest.mark.parametrize("brk", BREAKS, ids=BREAK_IDS)
def test_a_rendered_subject_with_a_line_break_is_422_naming_data(
    app: Flask, client: FlaskClient, brk: str
) -> None:
    """The data broke it (the request has no subject to name), as a batch names its row's."""
    data = {"name": f"x{brk}Bcc: victim@example.com", "product": "Acme", "login_url": "u"}
    response = post(client, {"to": ["a@example.com"], "template": "welcome", "data": data})
    body = assert_problem(response, 422)
    assert error_locs(body) == [["body", "data"]]
    assert body["errors"][0]["msg"].startswith("the subject it renders: ")
    assert queued_messages(app) == []


def test_tab_stays_allowed_in_a_subject(client: FlaskClient) -> None:
    assert post(client, {**MAIL, "subject": "Order\t42"}).status_code == 202


@pytest.mark.parametrize(
    ("field", "value", "loc"),
    [
        ("to", ['"Ada\x0bBcc: x@example.com" <ada@example.com>'], ["body", "to", 0]),
        ("cc", ['"Ada\u2028X-Injected: yes" <ada@example.com>'], ["body", "cc", 0]),
        ("bcc", ['"Ada\x00" <ada@example.com>'], ["body", "bcc", 0]),
        ("reply_to", '"Help\x0cBcc: x@example.com" <help@example.com>', ["body", "reply_to"]),
        ("reply_to", '"Help\r\nBcc: x@example.com" <help@example.com>', ["body", "reply_to"]),
    ],
)
def test_a_display_name_with_a_control_character_is_422(
    app: Flask, client: FlaskClient, field: str, value: Any, loc: list[Any]
) -> None:
    body = assert_problem(post(client, {**MAIL, field: value}), 422)
    assert loc in error_locs(body)
    assert queued_messages(app) == []


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("ada@xn--bcher-kva.example", "ada@xn--bcher-kva.example"),
        ("ada@bücher.example", "ada@xn--bcher-kva.example"),
        ("用户@例子.广告", "用户@例子.广告"),
    ],
)
def test_an_address_keeps_its_ascii_form(
    app: Flask, client: FlaskClient, given: str, kept: str
) -> None:
    response = post(client, {**MAIL, "to": [given], "reply_to": given})
    assert response.status_code == 202, response.get_data(as_text=True)
    payload = app.extensions["notifier"].store.payload(response.get_json()["id"])
    assert (payload["to"], payload["reply_to"]) == ([kept], kept)

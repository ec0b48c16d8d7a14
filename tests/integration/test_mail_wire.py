"""The wire format end to end: HTTP, Redis, a celery worker, and a strict SMTP server."""

from __future__ import annotations

import uuid

import pytest

from tests.support.harness.mail import NEWSLETTER_HTML, NEWSLETTER_TEXT
from tests.support.harness.stack import Stack
from tests.support.peers.smtp import wire_faults

pytestmark = pytest.mark.integration


def test_a_newsletter_to_fifty_goes_out_in_crlf_lines_within_998(stack: Stack) -> None:
    tag = uuid.uuid4().hex[:8]
    to = [f"reader{i:02d}-{tag}@example.com" for i in range(50)]
    body = {"to": to, "subject": "Newsletter — Grüße ✓", "text": NEWSLETTER_TEXT}
    response = stack.post("/v1/mail", {**body, "html": NEWSLETTER_HTML})
    assert response.status_code == 202, response.text
    notification_id = response.json()["id"]
    assert stack.wait_status(notification_id, "sent")["attempts"] == 1
    (data,) = stack.smtp.raw(notification_id)
    assert wire_faults(data) == []
    ((envelope, message),) = stack.smtp.received(notification_id)
    assert envelope.rcpt_tos == to
    plain = message.get_body(("plain",))
    assert plain is not None and plain.get_content().splitlines() == NEWSLETTER_TEXT.splitlines()


def test_a_punycode_address_is_delivered_as_given(stack: Stack) -> None:
    to = f"ada-{uuid.uuid4().hex[:8]}@xn--bcher-kva.example"
    response = stack.post("/v1/mail", {"to": [to], "subject": "Hallo", "text": "Hi"})
    notification_id = response.json()["id"]
    assert stack.wait_status(notification_id, "sent")["attempts"] == 1
    ((envelope, message),) = stack.smtp.received(notification_id)
    assert envelope.rcpt_tos == [to]
    assert "SMTPUTF8" not in envelope.mail_options
    assert message["To"] == to


def test_a_form_feed_in_the_subject_never_gets_in(stack: Stack) -> None:
    body = {"to": ["ada@example.com"], "subject": "Hi\u000cBcc: x@example.com", "text": "Hi"}
    response = stack.post("/v1/mail", body)
    assert response.status_code == 422
    assert ["body", "subject"] in [e["loc"] for e in response.json()["errors"]]

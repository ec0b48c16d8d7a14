"""Aliyun OSS upload forms minted through HTTP (and the ``upload_form`` task through a real
worker), uploaded by ``requests`` to a local OSS that checks each form's V4 signature and policy
as OSS does (``tests/support/peers/oss.py``, proven against Aliyun's own sample)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from celery import Celery

from tests.support.harness.stack import Stack
from tests.support.peers.oss import FakeOss
from tests.support.peers.s3 import post_form

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64


def mint(stack: Stack, who: str = "tester", **body: Any) -> dict[str, Any]:
    answer = stack.post("/v1/uploads/oss/token", {"bucket": "avatars", **body}, who=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def upload(form: Any, body: bytes = PNG, filename: str = "me.png", **change: Any) -> Any:
    return post_form(form, body, filename, **change)


def refused(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, f"<Code>{code}</Code>" in answer.text) == (status, True), (
        answer.text
    )


def test_a_right_file_is_stored_and_what_the_form_forbids_is_refused(
    stack: Stack, oss: FakeOss
) -> None:
    key = f"u/{uuid.uuid4().hex}.png"
    form = mint(stack, key=key, content_type="image/png", max_size=len(PNG), expires_in=60)
    assert form["url"] == f"{oss.url}/avatars"
    assert upload(form).status_code == 204
    stored = oss.objects[("avatars", key)]
    assert (stored.body, stored.content_type) == (PNG, "image/png")
    refused(upload(form, body=PNG + b"x"), 400, "EntityTooLarge")
    refused(upload(form, change={"Content-Type": "text/html"}), 403, "AccessDenied")
    refused(upload(form, key=f"u/{uuid.uuid4().hex}.png"), 403, "AccessDenied")
    oss.clock_offset = 61  # a minute and a second later, past the form's expires_in
    try:
        expired = upload(form)
    finally:
        oss.clock_offset = 0
    refused(expired, 403, "AccessDenied")
    assert "Policy expired" in expired.text


@pytest.mark.parametrize("field", ["policy", "x-oss-signature"])
def test_a_changed_byte_of_the_policy_or_signature_is_refused(
    stack: Stack, oss: FakeOss, field: str
) -> None:
    form = mint(stack, key=f"u/{uuid.uuid4().hex}.png", content_type="image/png")
    value = form["fields"][field]
    # One character another: still base64 (or hex), but not what was signed.
    at = len(value) // 2
    changed = value[:at] + ("A" if value[at] != "A" else "B") + value[at + 1 :]
    refused(upload(form, change={field: changed}), 403, "SignatureDoesNotMatch")


def test_a_prefix_form_stores_under_the_prefix_and_nowhere_else(stack: Stack, oss: FakeOss) -> None:
    prefix = f"u/{uuid.uuid4().hex}/"
    form = mint(stack, key_prefix=prefix, content_type="image/*")
    # The page sets the file's type, within the form's image/*.
    assert upload(form, filename="a.png", change={"Content-Type": "image/png"}).status_code == 204
    assert oss.objects[("avatars", f"{prefix}a.png")].content_type == "image/png"
    outside = upload(form, key="elsewhere/a.png", change={"Content-Type": "image/png"})
    refused(outside, 403, "AccessDenied")
    refused(upload(form, change={"Content-Type": "application/pdf"}), 403, "AccessDenied")
    assert ("avatars", "elsewhere/a.png") not in oss.objects


def test_a_confined_client_gets_forms_under_its_prefix_only(stack: Stack, oss: FakeOss) -> None:
    denied = stack.post(
        "/v1/uploads/oss/token", {"bucket": "avatars", "key": "u/1.png"}, who="uploader"
    )
    assert denied.status_code == 403
    form = mint(stack, who="uploader")
    assert upload(form, filename="mine-oss.png").status_code == 204
    assert ("avatars", "u/uploader/mine-oss.png") in oss.objects


def test_the_task_through_a_worker_answers_a_form_the_store_takes(
    stack: Stack, oss: FakeOss, caller: Celery
) -> None:
    key = f"u/{uuid.uuid4().hex}.png"
    body = {"bucket": "avatars", "key": key, "content_type": "image/png"}
    by_task = caller.send_task(
        "upload_form", kwargs={"store": "oss", "client": "tester", **body}
    ).get(timeout=30)
    assert (by_task["url"], by_task["key"]) == (f"{oss.url}/avatars", key)
    assert upload(by_task).status_code == 204
    assert oss.objects[("avatars", key)].body == PNG
    refused_task = caller.send_task(
        "upload_form", kwargs={"store": "oss", "client": "tester", **body, "bucket": "invoices"}
    )
    with pytest.raises(Exception) as caught:
        refused_task.get(timeout=30)
    assert type(caught.value).__name__ == "Forbidden"

"""S3 upload forms minted through HTTP (and the ``s3_upload_form`` task through a real worker),
uploaded by ``requests`` to a local S3 that checks each form's policy and SigV4 signature as S3
does (``tests/support/peers/s3.py``)."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from celery import Celery

from tests.support.harness.stack import Stack
from tests.support.peers.s3 import FakeS3, post_form

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64


def mint(stack: Stack, who: str = "tester", **body: Any) -> dict[str, Any]:
    answer = stack.post("/v1/uploads/s3/token", {"bucket": "avatars", **body}, who=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def upload(form: Any, body: bytes = PNG, filename: str = "me.png", **change: Any) -> Any:
    return post_form(form, body, filename, **change)


def test_a_right_file_is_stored_and_what_the_form_forbids_is_refused(
    stack: Stack, s3: FakeS3
) -> None:
    key = f"u/{uuid.uuid4().hex}.png"
    form = mint(stack, key=key, content_type="image/png", max_size=len(PNG), expires_in=60)
    assert form["url"] == f"{s3.url}/avatars"
    assert upload(form).status_code == 204
    stored = s3.objects[("avatars", key)]
    assert (stored.body, stored.content_type) == (PNG, "image/png")
    too_big = upload(form, body=PNG + b"x")
    assert (too_big.status_code, "EntityTooLarge" in too_big.text) == (400, True)
    other_type = upload(form, change={"Content-Type": "text/html"})
    assert (other_type.status_code, "Policy Condition failed" in other_type.text) == (403, True)
    s3.clock_offset = 61  # a minute and a second later, past the form's expires_in
    try:
        expired = upload(form)
    finally:
        s3.clock_offset = 0
    assert (expired.status_code, "Policy expired" in expired.text) == (403, True)


def test_a_prefix_form_stores_under_the_prefix_and_nowhere_else(stack: Stack, s3: FakeS3) -> None:
    prefix = f"u/{uuid.uuid4().hex}/"
    form = mint(stack, key_prefix=prefix, content_type="image/*")
    # The page sets the file's type, within the form's image/*.
    assert upload(form, filename="a.png", change={"Content-Type": "image/png"}).status_code == 204
    assert s3.objects[("avatars", f"{prefix}a.png")].content_type == "image/png"
    outside = upload(form, key="elsewhere/a.png", change={"Content-Type": "image/png"})
    assert (outside.status_code, "Policy Condition failed" in outside.text) == (403, True)
    not_an_image = upload(form, change={"Content-Type": "application/pdf"})
    assert not_an_image.status_code == 403
    assert ("avatars", "elsewhere/a.png") not in s3.objects


def test_a_confined_client_gets_forms_under_its_prefix_only(stack: Stack, s3: FakeS3) -> None:
    denied = stack.post(
        "/v1/uploads/s3/token", {"bucket": "avatars", "key": "u/1.png"}, who="uploader"
    )
    assert denied.status_code == 403
    form = mint(stack, who="uploader")
    assert upload(form, filename="mine.png").status_code == 204
    assert ("avatars", "u/uploader/mine.png") in s3.objects


def test_a_bucket_of_another_client_is_403_and_its_own_client_gets_a_form(
    stack: Stack, s3: FakeS3
) -> None:
    refused = stack.post("/v1/uploads/s3/token", {"bucket": "invoices", "key": "i/1.pdf"})
    assert refused.status_code == 403
    assert refused.headers["Content-Type"] == "application/problem+json"
    problem = refused.json()
    assert (problem["status"], "invoices" in problem["detail"]) == (403, True)
    key = f"i/{uuid.uuid4().hex}.pdf"
    form = mint(stack, who="shop", bucket="invoices", key=key)
    assert (form["bucket"], form["url"]) == ("invoices", f"{s3.url}/invoices")
    assert upload(form, body=b"%PDF-1.7", filename="1.pdf").status_code == 204
    assert s3.objects[("invoices", key)].body == b"%PDF-1.7"


def signed_terms(form: dict[str, Any]) -> tuple[list[Any], float]:
    """The conditions of a form's policy but its signing time, and that time (Unix seconds)."""
    conditions = json.loads(base64.b64decode(form["fields"]["policy"]))["conditions"]
    (signed,) = [c["x-amz-date"] for c in conditions if "x-amz-date" in c]
    at = datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
    return [c for c in conditions if "x-amz-date" not in c], at


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp).timestamp()


def test_the_task_answers_as_the_route_does(stack: Stack, s3: FakeS3, caller: Celery) -> None:
    body = {"bucket": "avatars", "key": "u/by-task.png", "content_type": "image/png"}
    by_task = caller.send_task("s3_upload_form", kwargs={"client": "tester", **body}).get(
        timeout=30
    )
    by_route = mint(stack, **body)
    assert set(by_task) == set(by_route)
    for field in ("url", "bucket", "key"):
        assert by_task[field] == by_route[field]
    assert set(by_task["fields"]) == set(by_route["fields"])
    # The same policy, signed a moment apart (the expiration is not among its conditions).
    (task_terms, task_signed), (route_terms, route_signed) = map(signed_terms, (by_task, by_route))
    assert task_terms == route_terms
    assert abs(task_signed - route_signed) <= 2
    assert abs(seconds(by_task["expires_at"]) - seconds(by_route["expires_at"])) <= 2
    # The task's form is as good as the route's: the local S3 takes it.
    assert upload(by_task).status_code == 204
    refused = caller.send_task(
        "s3_upload_form", kwargs={"client": "tester", **body, "bucket": "invoices"}
    )
    with pytest.raises(Exception) as caught:
        refused.get(timeout=30)
    assert type(caught.value).__name__ == "Forbidden"

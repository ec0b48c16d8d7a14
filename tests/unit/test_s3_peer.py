"""The local S3 of the tests (``tests/support/peers/s3.py``) against forms boto3 makes itself: it
takes a right one and refuses each thing S3 refuses, so a test that passes through it means S3
would take the form."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config

from tests.support.peers.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY, FakeS3, post_form

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def s3() -> Iterator[FakeS3]:
    server = FakeS3().start()
    yield server
    server.stop()


def form(s3: FakeS3, key: str = "u/42.png", secret: str = SECRET_ACCESS_KEY, **kw: Any) -> Any:
    """A presigned POST made by boto3 alone (none of Notifier's code)."""
    client = boto3.client(
        "s3",
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=secret,
        region_name=kw.pop("region", REGION),
        endpoint_url=s3.url,
        config=Config(signature_version="s3v4"),
    )
    return client.generate_presigned_post(
        "avatars",
        key,
        Fields={"Content-Type": "image/png"},
        Conditions=[{"Content-Type": "image/png"}, ["content-length-range", 1, 2048]],
        ExpiresIn=kw.pop("expires", 600),
    )


def upload(post: Any, body: bytes = PNG, filename: str = "me.png", **change: Any) -> Any:
    return post_form(post, body, filename, **change)


def refused(answer: requests.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert f"<Code>{code}</Code>" in answer.text
    return answer.text


def test_a_right_form_is_stored(s3: FakeS3) -> None:
    assert upload(form(s3)).status_code == 204
    stored = s3.objects[("avatars", "u/42.png")]
    assert (stored.body, stored.content_type) == (PNG, "image/png")


def test_a_key_under_a_prefix_takes_the_files_name(s3: FakeS3) -> None:
    assert upload(form(s3, key="u/7/${filename}"), filename="avatar.png").status_code == 204
    assert ("avatars", "u/7/avatar.png") in s3.objects
    # The prefix is a condition: a key outside it is refused, though the form is signed.
    refused(upload(form(s3, key="u/7/${filename}"), key="other/x.png"), 403, "AccessDenied")


def test_a_wrong_signature_secret_or_region_is_refused(s3: FakeS3) -> None:
    post = form(s3)
    refused(upload(post, change={"x-amz-signature": "0" * 64}), 403, "SignatureDoesNotMatch")
    refused(upload(form(s3, secret="another-secret")), 403, "SignatureDoesNotMatch")
    refused(upload(form(s3, region="us-east-1")), 400, "AuthorizationHeaderMalformed")


def test_a_changed_policy_no_longer_verifies(s3: FakeS3) -> None:
    post = form(s3)
    other = form(s3, key="anything/else.png")
    refused(upload(post, policy=other["fields"]["policy"]), 403, "SignatureDoesNotMatch")


def test_each_condition_is_held(s3: FakeS3) -> None:
    post = form(s3)
    refused(upload(post, key="u/43.png"), 403, "AccessDenied")
    refused(upload(post, change={"Content-Type": "text/html"}), 403, "AccessDenied")
    refused(upload(post, body=b"x" * 2049), 400, "EntityTooLarge")
    refused(upload(post, body=b""), 400, "EntityTooSmall")
    text = refused(upload(post, acl="public-read"), 403, "AccessDenied")
    assert "Extra input fields: acl" in text


def test_an_expired_form_is_refused(s3: FakeS3) -> None:
    post = form(s3, expires=60)
    s3.clock_offset = 61  # the server's clock a minute on: the form is past its expiration
    try:
        text = refused(upload(post), 403, "AccessDenied")
    finally:
        s3.clock_offset = 0
    assert "Policy expired" in text
    assert upload(post).status_code == 204  # the same form, in time


def test_the_file_must_be_the_last_field(s3: FakeS3) -> None:
    """AWS: "The file or text content must be the last field in the form"; S3 reads nothing
    after it, so a Content-Type sent later would not be in the upload."""
    post = form(s3)
    parts = [(name, (None, value)) for name, value in post["fields"].items()]
    answer = requests.post(post["url"], files=[("file", ("me.png", PNG)), *parts], timeout=10)
    refused(answer, 400, "InvalidArgument")
    assert upload(post).status_code == 204  # the same form, the file last

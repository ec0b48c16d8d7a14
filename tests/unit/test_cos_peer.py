"""The local COS (tests/support/peers/cos.py) held to Tencent's own worked example: the form of
the "POST Object" page's "Signature protection use cases", its policy, key time and signature as
Tencent computed them, with the example's SecretId and SecretKey. Tencent's Python SDK signs no
forms (its CosS3Auth signs requests), so the page's values are the independent implementation.
The server takes that form, and refuses it signed with another secret, changed by one byte, at
a time outside its key time, or against its conditions."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.support.peers.cos import FakeCos, cos_signature
from tests.support.peers.cos_example import KEY_TIME, POLICY, SECRET_ID, SECRET_KEY, SIGNATURE
from tests.support.peers.s3 import post_form

BUCKET = "examplebucket-1250000000"
WITHIN = 1567151000.0  # 2019-08-30T07:43:20Z: within the key time, before the expiration
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 64


@pytest.fixture
def cos() -> Iterator[FakeCos]:
    """The local COS with the example's bucket and keys, its clock in the example's hour."""
    server = FakeCos(buckets=(BUCKET,), secret_id=SECRET_ID, secret_key=SECRET_KEY).start()
    server.clock = lambda: WITHIN
    yield server
    server.stop()


def example(cos: FakeCos, **change: str) -> dict[str, Any]:
    """The page's form, with what its policy asks of the other fields, posted to ``cos``."""
    fields = {
        "key": "folder/subfolder/${filename}",
        "acl": "default",
        "Content-Type": "image/jpeg",
        "success_action_redirect": "https://my.website/done",
        "x-cos-server-side-encryption": "AES256",
        "policy": POLICY,
        "q-sign-algorithm": "sha1",
        "q-ak": SECRET_ID,
        "q-key-time": KEY_TIME,
        "q-signature": SIGNATURE,
    }
    return {"url": f"{cos.url}/{BUCKET}", "fields": {**fields, **change}}


def test_the_signature_is_the_one_tencent_computed_for_its_example() -> None:
    assert cos_signature(SECRET_KEY, KEY_TIME, base64.b64decode(POLICY)) == SIGNATURE


def test_tencents_example_form_uploads(cos: FakeCos) -> None:
    answer = post_form(example(cos), JPEG, filename="photo.jpg")
    assert answer.status_code == 204, answer.text
    assert cos.objects[(BUCKET, "folder/subfolder/photo.jpg")].body == JPEG


def test_the_example_signed_with_another_secret_is_refused() -> None:
    other = FakeCos(buckets=(BUCKET,), secret_id=SECRET_ID, secret_key=SECRET_KEY[:-1] + "Z")
    other.clock = lambda: WITHIN
    other.start()
    try:
        answer = post_form(example(other), JPEG, filename="photo.jpg")
    finally:
        other.stop()
    assert (answer.status_code, "SignatureDoesNotMatch" in answer.text) == (403, True)
    assert other.objects == {}


@pytest.mark.parametrize(
    ("change", "code"),
    [
        # One byte of the policy (its JSON's "folder" made "Folder"), then of the signature.
        ({"policy": POLICY.replace("Zm9sZGVy", "Rm9sZGVy", 1)}, "SignatureDoesNotMatch"),
        ({"q-signature": "8" + SIGNATURE[1:]}, "SignatureDoesNotMatch"),
        # The signature is over the policy's JSON text: the same key time spelt otherwise fails.
        ({"q-key-time": "1567150692;1567157893"}, "SignatureDoesNotMatch"),
        ({"q-ak": SECRET_ID[:-1] + "x"}, "InvalidAccessKeyId"),
        # What the policy forbids: a key outside its prefix, another type, another encryption.
        ({"key": "folder/other/${filename}"}, "AccessDenied"),
        ({"Content-Type": "text/html"}, "AccessDenied"),
        ({"x-cos-server-side-encryption": "cos/kms"}, "AccessDenied"),
    ],
)
def test_a_changed_form_is_refused(cos: FakeCos, change: dict[str, str], code: str) -> None:
    answer = post_form(example(cos, **change), JPEG, filename="photo.jpg")
    assert (answer.status_code, f"<Code>{code}</Code>" in answer.text) == (403, True), answer.text
    assert cos.objects == {}


def test_a_field_the_policy_names_must_be_in_the_form(cos: FakeCos) -> None:
    form = example(cos)
    del form["fields"]["acl"]
    answer = post_form(form, JPEG, filename="photo.jpg")
    assert (answer.status_code, "the form has no acl" in answer.text) == (403, True)


@pytest.mark.parametrize("now", [1567150691.0, 1567157893.0])
def test_the_example_outside_its_key_time_is_refused(cos: FakeCos, now: float) -> None:
    cos.clock = lambda: now
    answer = post_form(example(cos), JPEG, filename="photo.jpg")
    assert (answer.status_code, "<Code>AccessDenied</Code>" in answer.text) == (403, True)
    assert cos.objects == {}


def test_the_file_must_be_the_last_field(cos: FakeCos) -> None:
    """Tencent: the file field "must be the last field of the form"."""
    post = example(cos)
    parts = [(name, (None, value)) for name, value in post["fields"].items()]
    answer = requests.post(post["url"], files=[("file", ("photo.jpg", JPEG)), *parts], timeout=10)
    assert answer.status_code == 400 and "<Code>InvalidArgument</Code>" in answer.text

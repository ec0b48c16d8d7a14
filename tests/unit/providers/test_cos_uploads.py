"""Tencent COS upload forms, minted through the one path every store takes
(``services/uploads.py``), uploaded with ``requests`` to the local COS that checks their policy
and signature as Tencent documents them (``tests/support/peers/cos.py``, itself held to Tencent's
worked example by ``tests/unit/test_cos_peer.py``)."""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from notifier.errors import NotAllowed, Unavailable
from notifier.providers.cos import CosSettings, CosUploads, signature
from notifier.schemas import CosUploadRequest
from notifier.services.uploads import mint_upload
from notifier.settings import ApiClient
from notifier.timestamps import rfc3339
from tests.support.peers import cos as peer
from tests.support.peers.cos import FakeCos
from tests.support.peers.cos_example import KEY_TIME, POLICY, SECRET_KEY, SIGNATURE
from tests.support.peers.s3 import post_form

PNG = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64
WEB = ApiClient(
    client="web", key_sha256="0" * 64, scopes=frozenset({"upload"}),
    buckets={"cos": frozenset({peer.BUCKET})},
)  # fmt: skip
TENANT = WEB.model_copy(update={"client": "tenant", "key_prefixes": {"cos": "tenant-7"}})


@pytest.fixture
def cos() -> Iterator[FakeCos]:
    """The local COS, its clock the real one."""
    server = FakeCos().start()
    yield server
    server.stop()


def store(cos: FakeCos, **settings: Any) -> CosUploads:
    keys = {"secret_id": peer.SECRET_ID, "secret_key": peer.SECRET_KEY, "endpoint": cos.url}
    return CosUploads(CosSettings(**{**keys, **settings}))


def mint(store: CosUploads, client: ApiClient = WEB, **body: Any) -> dict[str, Any]:
    request = CosUploadRequest.model_validate({"bucket": peer.BUCKET, **body})
    form = mint_upload(request, client=client, store=store, require_https=False)
    answer: dict[str, Any] = form.model_dump()
    return answer


def test_the_signature_is_tencents_for_its_worked_example() -> None:
    assert signature(SECRET_KEY, KEY_TIME, base64.b64decode(POLICY).decode()) == SIGNATURE


def test_a_right_file_is_stored_and_what_the_form_forbids_is_refused(cos: FakeCos) -> None:
    key = f"u/{uuid.uuid4().hex}.png"
    form = mint(store(cos), key=key, content_type="image/png", max_size=len(PNG), expires_in=60)
    assert (form["url"], form["key"]) == (f"{cos.url}/{peer.BUCKET}", key)
    assert post_form(form, PNG).status_code == 204
    stored = cos.objects[(peer.BUCKET, key)]
    assert (stored.body, stored.content_type) == (PNG, "image/png")
    too_big = post_form(form, PNG + b"x")
    assert (too_big.status_code, "EntityTooLarge" in too_big.text) == (400, True)
    other_type = post_form(form, PNG, change={"Content-Type": "text/html"})
    assert (other_type.status_code, "Invalid according to Policy" in other_type.text) == (403, True)
    other_key = post_form(form, PNG, change={"key": "u/other.png"})
    assert (other_key.status_code, "Invalid according to Policy" in other_key.text) == (403, True)
    # One byte of the signed policy changed: the JSON's bucket name, made another.
    text = base64.b64decode(form["fields"]["policy"]).replace(b"avatars-", b"avatarz-")
    changed = post_form(form, PNG, change={"policy": base64.b64encode(text).decode()})
    assert (changed.status_code, "SignatureDoesNotMatch" in changed.text) == (403, True)
    cos.clock = lambda: time.time() + 61  # a minute and a second later, past its expires_in
    expired = post_form(form, PNG)
    assert (expired.status_code, "<Code>AccessDenied</Code>" in expired.text) == (403, True)
    assert list(cos.objects) == [(peer.BUCKET, key)]


def test_the_form_is_what_tencent_documents(cos: FakeCos) -> None:
    before = int(time.time())
    form = mint(store(cos), key="u/1.png", content_type="image/png", max_size=100, expires_in=600)
    fields = form["fields"]
    text = base64.b64decode(fields["policy"]).decode()
    policy = json.loads(text)
    start, end = map(int, fields["q-key-time"].split(";"))
    assert before - 60 <= start <= before and end - start == 660
    # expires_at is the end of the key time, and the policy's expiration.
    assert form["expires_at"] == policy["expiration"] == rfc3339(end)
    assert policy["conditions"] == [
        {"bucket": peer.BUCKET},
        ["content-length-range", 1, 100],
        {"Content-Type": "image/png"},
        {"key": "u/1.png"},
        {"q-sign-algorithm": "sha1"},
        {"q-ak": peer.SECRET_ID},
        {"q-sign-time": fields["q-key-time"]},
    ]
    assert (fields["q-sign-algorithm"], fields["q-ak"]) == ("sha1", peer.SECRET_ID)
    # Signed over the policy's JSON text (Tencent's step 5), not over its base64.
    key_time = fields["q-key-time"]
    assert fields["q-signature"] == peer.cos_signature(peer.SECRET_KEY, key_time, text.encode())
    over_base64 = peer.cos_signature(peer.SECRET_KEY, key_time, fields["policy"].encode())
    assert fields["q-signature"] != over_base64


def test_a_prefix_form_stores_under_the_prefix_and_nowhere_else(cos: FakeCos) -> None:
    form = mint(store(cos), TENANT, content_type="image/*")
    # The client's prefix, as a folder; the page's file name in COS's own ${filename}.
    assert (form["key"], form["fields"]["key"]) == (None, "tenant-7/${filename}")
    right = post_form(form, PNG, filename="a.png", change={"Content-Type": "image/png"})
    assert right.status_code == 204, right.text
    assert cos.objects[(peer.BUCKET, "tenant-7/a.png")].content_type == "image/png"
    elsewhere = post_form(
        form, PNG, filename="a.png",
        change={"Content-Type": "image/png", "key": "tenant-70/${filename}"},
    )  # fmt: skip
    assert (elsewhere.status_code, "starts-with" in elsewhere.text) == (403, True)
    not_an_image = post_form(form, PNG, filename="a.png", change={"Content-Type": "text/html"})
    assert not_an_image.status_code == 403
    assert list(cos.objects) == [(peer.BUCKET, "tenant-7/a.png")]


def test_without_an_endpoint_the_form_goes_to_the_regions_host(cos: FakeCos) -> None:
    form = mint(store(cos, endpoint=None, region="ap-guangzhou"), key="u/1.png")
    assert form["url"] == f"https://{peer.BUCKET}.cos.ap-guangzhou.myqcloud.com"


@pytest.mark.parametrize(
    ("settings", "missing"),
    [
        ({"secret_key": None}, "NOTIFIER_COS_SECRET_KEY"),
        ({"endpoint": None}, "NOTIFIER_COS_REGION"),
    ],
)
def test_a_store_without_its_settings_is_unavailable(
    cos: FakeCos, settings: dict[str, Any], missing: str
) -> None:
    with pytest.raises(Unavailable, match=missing):
        mint(store(cos, **settings), key="u/1.png")


def test_a_bucket_the_client_was_not_given_is_refused(cos: FakeCos) -> None:
    other = WEB.model_copy(update={"buckets": {"s3": frozenset({peer.BUCKET})}})
    with pytest.raises(NotAllowed, match=peer.BUCKET):
        mint(store(cos), other, key="u/1.png")

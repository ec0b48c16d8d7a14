"""Aliyun OSS and Tencent COS upload forms minted through HTTP (and the ``upload_form`` task
through a real worker), uploaded by ``requests`` to a local store that checks each form's
signature and policy as its vendor documents it (``tests/support/peers/oss.py``, proven against
Aliyun's own sample; ``tests/support/peers/cos.py``, against Tencent's worked example); and
Cloud Storage forms minted through HTTP, their signature checked with the service account's
public key and their policy's conditions as Cloud Storage reads them (``peers/gcs.py``)."""

from __future__ import annotations

import base64
import time
import uuid
from typing import Any

import pytest
from celery import Celery

from tests.support.harness.clients import bucket
from tests.support.harness.stack import Stack
from tests.support.peers import gcs
from tests.support.peers.s3 import FakeS3, post_form

pytestmark = pytest.mark.integration

PNG = b"\x89PNG\r\n\x1a\n" + uuid.uuid4().bytes * 64
# The stores with a local server (a fixture of the store's name), and the field of each form
# that holds its signature.
SIGNATURES = {"oss": "x-oss-signature", "cos": "q-signature"}
STORES = list(SIGNATURES)


def mint(stack: Stack, store: str, who: str = "tester", **body: Any) -> dict[str, Any]:
    answer = stack.post(f"/v1/uploads/{store}/token", {"bucket": bucket(store), **body}, who=who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def upload(form: Any, body: bytes = PNG, filename: str = "me.png", **change: Any) -> Any:
    return post_form(form, body, filename, **change)


def typed(store: str, kind: str) -> dict[str, str]:
    """The fields a page sets to the file's type, for a form asked with a whole type (OSS
    stores the type its x-oss-content-type names: README's page sets both)."""
    return {"Content-Type": kind, **({"x-oss-content-type": kind} if store == "oss" else {})}


def refused(answer: Any, status: int, code: str) -> None:
    assert (answer.status_code, f"<Code>{code}</Code>" in answer.text) == (status, True), (
        answer.text
    )


def local(request: pytest.FixtureRequest, store: str) -> FakeS3:
    """The store's local server."""
    server: FakeS3 = request.getfixturevalue(store)
    return server


@pytest.mark.parametrize("store", STORES)
def test_a_right_file_is_stored_and_what_the_form_forbids_is_refused(
    stack: Stack, request: pytest.FixtureRequest, store: str
) -> None:
    server, avatars = local(request, store), bucket(store)
    key = f"u/{uuid.uuid4().hex}.png"
    form = mint(stack, store, key=key, content_type="image/png", max_size=len(PNG), expires_in=60)
    assert form["url"] == f"{server.url}/{avatars}"
    assert upload(form).status_code == 204
    stored = server.objects[(avatars, key)]
    assert (stored.body, stored.content_type) == (PNG, "image/png")
    refused(upload(form, body=PNG + b"x"), 400, "EntityTooLarge")
    refused(upload(form, change=typed(store, "text/html")), 403, "AccessDenied")
    # The file part's own type, as a page may send it, is not what is stored either.
    again = f"u/{uuid.uuid4().hex}.png"
    form = mint(stack, store, key=again, content_type="image/png", max_size=len(PNG), expires_in=60)
    assert upload(form, file_type="text/html").status_code == 204
    assert server.objects[(avatars, again)].content_type == "image/png"
    refused(upload(form, key=f"u/{uuid.uuid4().hex}.png"), 403, "AccessDenied")
    server.clock_offset = 61  # a minute and a second later, past the form's expires_in
    try:
        expired = upload(form)
    finally:
        server.clock_offset = 0
    refused(expired, 403, "AccessDenied")
    assert "expired" in expired.text


@pytest.mark.parametrize("store", STORES)
def test_a_changed_byte_of_the_signature_or_the_policy_is_refused(
    stack: Stack, request: pytest.FixtureRequest, store: str
) -> None:
    local(request, store)
    form = mint(stack, store, key=f"u/{uuid.uuid4().hex}.png", max_size=len(PNG))
    field = SIGNATURES[store]
    value = form["fields"][field]
    at = len(value) // 2  # one hex digit another
    changed = value[:at] + ("0" if value[at] != "0" else "1") + value[at + 1 :]
    refused(upload(form, change={field: changed}), 403, "SignatureDoesNotMatch")
    # The policy as someone would change it: one digit more of room for the file.
    policy = base64.b64decode(form["fields"]["policy"]).decode()
    wider = policy.replace(f'["content-length-range",1,{len(PNG)}]',
                           f'["content-length-range",1,{len(PNG) * 10}]')  # fmt: skip
    assert wider != policy
    encoded = base64.b64encode(wider.encode()).decode()
    refused(upload(form, body=PNG * 2, change={"policy": encoded}), 403, "SignatureDoesNotMatch")


@pytest.mark.parametrize("store", STORES)
def test_a_prefix_form_stores_under_the_prefix_and_nowhere_else(
    stack: Stack, request: pytest.FixtureRequest, store: str
) -> None:
    server, avatars = local(request, store), bucket(store)
    prefix = f"u/{uuid.uuid4().hex}/"
    form = mint(stack, store, key_prefix=prefix, content_type="image/*")
    # The page sets the file's type, within the form's image/*.
    assert upload(form, filename="a.png", change=typed(store, "image/png")).status_code == 204
    assert server.objects[(avatars, f"{prefix}a.png")].content_type == "image/png"
    outside = upload(form, key="elsewhere/a.png", change=typed(store, "image/png"))
    refused(outside, 403, "AccessDenied")
    refused(upload(form, change=typed(store, "application/pdf")), 403, "AccessDenied")
    # OSS: the Content-Type field alone, within image/*, is not enough (what OSS would store is
    # the file part's own type, which no condition holds).
    if store == "oss":
        refused(upload(form, change={"Content-Type": "image/png"}), 403, "AccessDenied")
    assert (avatars, "elsewhere/a.png") not in server.objects


@pytest.mark.parametrize("store", STORES)
def test_a_confined_client_gets_forms_under_its_prefix_only(
    stack: Stack, request: pytest.FixtureRequest, store: str
) -> None:
    server, avatars = local(request, store), bucket(store)
    denied = stack.post(
        f"/v1/uploads/{store}/token", {"bucket": avatars, "key": "u/1.png"}, who="uploader"
    )
    assert denied.status_code == 403
    form = mint(stack, store, who="uploader")
    assert upload(form, filename=f"mine-{store}.png").status_code == 204
    assert (avatars, f"u/uploader/mine-{store}.png") in server.objects


@pytest.mark.parametrize("store", STORES)
def test_the_task_through_a_worker_answers_a_form_the_store_takes(
    stack: Stack, request: pytest.FixtureRequest, caller: Celery, store: str
) -> None:
    server, avatars = local(request, store), bucket(store)
    key = f"u/{uuid.uuid4().hex}.png"
    body = {"bucket": avatars, "key": key, "content_type": "image/png"}
    by_task = caller.send_task(
        "upload_form", kwargs={"store": store, "client": "tester", **body}
    ).get(timeout=30)
    assert (by_task["url"], by_task["key"]) == (f"{server.url}/{avatars}", key)
    assert upload(by_task).status_code == 204
    assert server.objects[(avatars, key)].body == PNG
    refused_task = caller.send_task(
        "upload_form",
        kwargs={"store": store, "client": "tester", **body, "bucket": bucket(store, "invoices")},
    )
    with pytest.raises(Exception) as caught:
        refused_task.get(timeout=30)
    assert type(caught.value).__name__ == "Forbidden"


def test_a_cloud_storage_form_is_signed_by_the_account_and_allows_only_what_was_asked(
    stack: Stack,
) -> None:
    avatars = bucket("gcs")
    form = mint(stack, "gcs", who="uploader", content_type="image/png", max_size=len(PNG),
                expires_in=60)  # fmt: skip
    assert form["url"] == f"https://storage.googleapis.com/{avatars}/"
    fields = form["fields"]
    assert fields["key"] == "u/uploader/${filename}"
    assert gcs.verifies(fields)
    assert gcs.holds(fields, avatars, len(PNG))
    assert not gcs.holds(fields, avatars, len(PNG) + 1)
    assert not gcs.holds(fields, bucket("gcs", "invoices"), len(PNG))
    assert not gcs.holds({**fields, "Content-Type": "text/html"}, avatars, len(PNG))
    assert not gcs.holds({**fields, "key": "elsewhere/${filename}"}, avatars, len(PNG))
    assert not gcs.holds(fields, avatars, len(PNG), now=time.time() + 61)
    at = len(fields["x-goog-signature"]) // 2
    digit = "0" if fields["x-goog-signature"][at] != "0" else "1"
    changed = fields["x-goog-signature"][:at] + digit + fields["x-goog-signature"][at + 1 :]
    assert not gcs.verifies({**fields, "x-goog-signature": changed})


def test_the_task_through_a_worker_answers_a_cloud_storage_form(
    stack: Stack, caller: Celery
) -> None:
    body = {"bucket": bucket("gcs"), "key": "u/by-worker.png"}
    by_task = caller.send_task(
        "upload_form", kwargs={"store": "gcs", "client": "tester", **body}
    ).get(timeout=30)
    assert (by_task["key"], by_task["fields"]["key"]) == ("u/by-worker.png", "u/by-worker.png")
    assert gcs.verifies(by_task["fields"])
    assert gcs.holds(by_task["fields"], bucket("gcs"), len(PNG))

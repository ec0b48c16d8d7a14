"""POST /v1/uploads/oss/token: Aliyun OSS PostObject forms, checked by deriving their V4 signing
key as Aliyun's page states it (the local OSS's derivation, not Notifier's) and decoding their
policy (``tests/integration/test_oss_uploads.py`` uploads through the local OSS itself)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.providers.oss import OssUploads
from tests.support.harness.api import assert_problem, error_locs
from tests.support.harness.clients import OSS, auth
from tests.support.peers.oss import ACCESS_KEY_ID, REGION, derived_key

FORM = {
    "bucket": "avatars",
    "key": "u/42.png",
    "expires_in": 600,
    "content_type": "image/png",
    "max_size": 5242880,
}


def mint(client: FlaskClient, body: dict[str, Any], who: str = "tester") -> Any:
    return client.post("/v1/uploads/oss/token", json=body, headers=auth(who))


def signed_policy(fields: dict[str, str]) -> dict[str, Any]:
    """The form's policy, once its signature is derived again from the secret and found equal."""
    access_key, date, region, service, end = fields["x-oss-credential"].split("/")
    assert (access_key, region, service, end) == (ACCESS_KEY_ID, REGION, "oss", "aliyun_v4_request")
    assert fields["x-oss-signature-version"] == "OSS4-HMAC-SHA256"
    assert fields["x-oss-date"][:8] == date
    key = derived_key(OSS["oss_access_key_secret"], date, region)
    expected = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["x-oss-signature"])
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def test_a_form_for_one_key_signs_what_was_asked(client: FlaskClient) -> None:
    before = time.time()
    answer = mint(client, FORM)
    assert answer.status_code == 200, answer.get_json()
    form = answer.get_json()
    assert set(form) == {"url", "fields", "bucket", "key", "expires_at"}
    assert (form["url"], form["bucket"], form["key"]) == (
        f"{OSS['oss_endpoint']}/avatars",
        "avatars",
        "u/42.png",
    )
    fields = form["fields"]
    assert (fields["key"], fields["Content-Type"]) == ("u/42.png", "image/png")
    assert fields["x-oss-content-type"] == "image/png"  # what OSS stores before any other
    policy = signed_policy(fields)
    conditions = policy["conditions"]
    for condition in (
        {"bucket": "avatars"},
        ["eq", "$key", "u/42.png"],
        {"Content-Type": "image/png"},
        {"x-oss-content-type": "image/png"},
        ["content-length-range", 1, 5242880],
        *({name: fields[name]} for name in ("x-oss-signature-version", "x-oss-credential")),
        {"x-oss-date": fields["x-oss-date"]},
    ):
        assert condition in conditions
    assert len(conditions) == 8  # nothing more is allowed than was asked
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 599 <= expiration <= time.time() + 601
    assert datetime.fromisoformat(form["expires_at"]).timestamp() == expiration


def test_a_prefix_leaves_the_files_name_to_the_page(client: FlaskClient) -> None:
    body = {"bucket": "avatars", "key_prefix": "u/42", "content_type": "image/*"}
    form = mint(client, body).get_json()
    assert form["key"] is None and form["fields"]["key"] == "u/42/${filename}"
    assert "Content-Type" not in form["fields"]  # the page gives the file's own type
    conditions = signed_policy(form["fields"])["conditions"]
    assert ["starts-with", "$key", "u/42/"] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert ["starts-with", "$x-oss-content-type", "image/"] in conditions
    assert ["content-length-range", 1, 5 * 1024 * 1024] in conditions  # the default size


def test_without_an_endpoint_the_form_goes_to_the_buckets_own_host(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_app(make_settings(oss_endpoint=None)).test_client()
    form = mint(client, FORM).get_json()
    assert form["url"] == "https://avatars.oss-cn-hangzhou.aliyuncs.com"


def test_a_bucket_of_another_client_is_403_before_anything_is_signed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kw: Any) -> Any:
        raise AssertionError("signed")

    monkeypatch.setattr(OssUploads, "mint", never)
    body = assert_problem(mint(client, {**FORM, "bucket": "invoices"}), 403)
    assert "invoices" in body["detail"]
    assert_problem(mint(client, FORM, who="mailer"), 403)  # the upload scope
    assert_problem(mint(client, FORM, who="uploader"), 403)  # outside its prefix


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"bucket": "avatars.eu"}, ["body", "bucket"]),  # S3 allows dots; OSS does not
        ({"key": "u/" + "k" * 1022}, ["body", "key"]),  # 1024 bytes: S3 takes them, OSS not
        ({"key": None, "key_prefix": "u/" + "k" * 1022}, ["body", "key_prefix"]),
        ({"key": "u/${filename}"}, ["body", "key"]),
        ({"expires_in": 86401}, ["body", "expires_in"]),
        ({"max_size": 5 * 1024**3 + 1}, ["body", "max_size"]),
        ({"content_type": "png"}, ["body", "content_type"]),
        ({"acl": "public-read"}, ["body", "acl"]),
    ],
)
def test_an_invalid_field_is_422_naming_it(
    client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = {k: v for k, v in {**FORM, **change}.items() if v is not None}
    assert loc in error_locs(assert_problem(mint(client, body), 422))


def test_a_1023_byte_key_is_signed(client: FlaskClient) -> None:
    assert mint(client, {**FORM, "key": "u/" + "k" * 1021}).status_code == 200


def test_without_credentials_the_route_is_503_naming_them(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_app(make_settings(oss_access_key_id=None, oss_access_key_secret=None))
    body = assert_problem(mint(client.test_client(), FORM), 503)
    assert "NOTIFIER_OSS_ACCESS_KEY_ID" in body["detail"]
    no_region = create_app(make_settings(oss_region=None)).test_client()
    assert "NOTIFIER_OSS_REGION" in assert_problem(mint(no_region, FORM), 503)["detail"]


def test_an_unknown_store_is_404(client: FlaskClient) -> None:
    body = assert_problem(client.post("/v1/uploads/nas/token", json=FORM, headers=auth()), 404)
    assert "'nas'" in body["detail"]


def test_the_document_lists_the_route_for_every_store_with_its_body(client: FlaskClient) -> None:
    paths = client.get("/openapi.json").get_json()["paths"]
    assert "/v1/uploads/{store}/token" not in paths
    for store, body, answer in (
        ("qiniu", "UploadTokenRequest", "UploadToken"),
        ("s3", "S3UploadRequest", "S3UploadForm"),
        ("oss", "OssUploadRequest", "S3UploadForm"),
        ("cos", "CosUploadRequest", "S3UploadForm"),
        ("gcs", "GcsUploadRequest", "S3UploadForm"),
    ):
        operation = paths[f"/v1/uploads/{store}/token"]["post"]
        asked = operation["requestBody"]["content"]["application/json"]["schema"]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert (asked, ok) == (
            {"$ref": f"#/components/schemas/{body}"},
            {"$ref": f"#/components/schemas/{answer}"},
        )
        assert operation["operationId"] == f"post_v1_uploads_{store}_token"
        assert {"200", "401", "403", "422", "503"} <= set(operation["responses"])

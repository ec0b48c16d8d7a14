"""POST /v1/uploads/s3/token: forms checked by recomputing their SigV4 signature and decoding
their policy (no S3 here: ``tests/integration/test_s3_uploads.py`` uploads through one)."""

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
from notifier.providers.s3 import S3Settings, S3Uploads
from notifier.schemas import S3UploadRequest
from tests.support.harness.api import assert_problem, error_locs
from tests.support.harness.clients import S3, auth
from tests.support.peers.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.peers.sigv4 import signing_key

FORM = {
    "bucket": "avatars",
    "key": "u/42.png",
    "expires_in": 600,
    "content_type": "image/png",
    "max_size": 5242880,
}


def mint(client: FlaskClient, body: dict[str, Any], who: str = "tester") -> Any:
    return client.post("/v1/uploads/s3/token", json=body, headers=auth(who))


def signed_policy(fields: dict[str, str]) -> dict[str, Any]:
    """The form's policy, once its signature is recomputed from the secret and found equal."""
    access_key, date, region, service, end = fields["x-amz-credential"].split("/")
    assert (access_key, region, service, end) == (ACCESS_KEY_ID, REGION, "s3", "aws4_request")
    assert fields["x-amz-algorithm"] == "AWS4-HMAC-SHA256"
    key = signing_key(SECRET_ACCESS_KEY, date, region)
    expected = hmac.new(key, fields["policy"].encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, fields["x-amz-signature"])
    policy: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return policy


def test_a_form_for_one_key_signs_what_was_asked(client: FlaskClient) -> None:
    before = time.time()
    answer = mint(client, FORM)
    assert answer.status_code == 200, answer.get_json()
    form = answer.get_json()
    assert set(form) == {"url", "fields", "bucket", "key", "expires_at"}
    assert (form["url"], form["bucket"], form["key"]) == (
        f"{S3['s3_endpoint_url']}/avatars",
        "avatars",
        "u/42.png",
    )
    fields = form["fields"]
    assert (fields["key"], fields["Content-Type"]) == ("u/42.png", "image/png")
    policy = signed_policy(fields)
    conditions = policy["conditions"]
    for condition in (
        {"bucket": "avatars"},
        {"key": "u/42.png"},
        {"Content-Type": "image/png"},
        ["content-length-range", 1, 5242880],
    ):
        assert condition in conditions
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00")).timestamp()
    assert before + 599 <= expiration <= time.time() + 601
    assert datetime.fromisoformat(form["expires_at"]).timestamp() == expiration


def test_a_prefix_leaves_the_files_name_to_the_page(client: FlaskClient) -> None:
    body = {"bucket": "avatars", "key_prefix": "u/42/", "content_type": "image/*"}
    form = mint(client, body).get_json()
    assert form["key"] is None and form["fields"]["key"] == "u/42/${filename}"
    assert "Content-Type" not in form["fields"]  # the page gives the file's own type
    conditions = signed_policy(form["fields"])["conditions"]
    assert ["starts-with", "$key", "u/42/"] in conditions
    assert ["starts-with", "$Content-Type", "image/"] in conditions
    assert ["content-length-range", 1, 5 * 1024 * 1024] in conditions  # the default size


@pytest.mark.parametrize(
    ("asked", "condition"),
    [
        ("Image/*", ["starts-with", "$Content-Type", "image/"]),
        ("Image/PNG", {"Content-Type": "image/png"}),
    ],
)
def test_a_content_type_is_signed_in_lower_case(
    client: FlaskClient, asked: str, condition: Any
) -> None:
    """Media types are case-insensitive and a browser gives a file's in lower case: a policy
    that starts-with "Image/" would refuse every upload."""
    form = mint(client, {"bucket": "avatars", "key": "u/42.png", "content_type": asked}).get_json()
    assert condition in signed_policy(form["fields"])["conditions"]


def test_a_bucket_of_another_client_is_403_before_anything_is_signed(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(*args: Any, **kw: Any) -> Any:
        raise AssertionError("signed")

    monkeypatch.setattr(S3Uploads, "mint", never)
    body = assert_problem(mint(client, {**FORM, "bucket": "invoices"}), 403)
    assert "invoices" in body["detail"]
    assert_problem(mint(client, FORM, who="mailer"), 403)  # the upload scope


def test_a_confined_client_stays_under_its_prefix(client: FlaskClient) -> None:
    assert_problem(mint(client, FORM, who="uploader"), 403)
    assert_problem(mint(client, {"bucket": "avatars", "key_prefix": "u/"}, who="uploader"), 403)
    inside = mint(client, {**FORM, "key": "u/uploader/1.png"}, who="uploader").get_json()
    assert inside["fields"]["key"] == "u/uploader/1.png"
    default = mint(client, {"bucket": "avatars"}, who="uploader").get_json()
    assert default["fields"]["key"] == "u/uploader/${filename}"


@pytest.mark.parametrize(
    ("change", "loc"),
    [
        ({"key_prefix": "u/"}, ["body", "key_prefix"]),
        ({"key": "é" * 513}, ["body", "key"]),
        ({"key": ""}, ["body", "key"]),
        ({"key": "u/${filename}"}, ["body", "key"]),
        ({"key": "u/\n.png"}, ["body", "key"]),
        ({"expires_in": 59}, ["body", "expires_in"]),
        ({"expires_in": 86401}, ["body", "expires_in"]),
        ({"max_size": 0}, ["body", "max_size"]),
        ({"max_size": 5 * 1024**3 + 1}, ["body", "max_size"]),
        ({"max_size": "5mb"}, ["body", "max_size"]),
        ({"content_type": "png"}, ["body", "content_type"]),
        ({"content_type": "image/png; x=\n"}, ["body", "content_type"]),
        ({"bucket": "Avatars_1"}, ["body", "bucket"]),
        ({"acl": "public-read"}, ["body", "acl"]),
    ],
)
def test_an_invalid_field_is_422_naming_it(
    client: FlaskClient, change: dict[str, Any], loc: list[Any]
) -> None:
    body = assert_problem(mint(client, {**FORM, **change}), 422)
    assert loc in error_locs(body)


def test_without_credentials_the_route_is_503_and_the_rest_runs(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_app(
        make_settings(s3_access_key_id=None, s3_secret_access_key=None)
    ).test_client()
    body = assert_problem(mint(client, FORM), 503)
    assert "NOTIFIER_S3_ACCESS_KEY_ID" in body["detail"]
    assert client.get("/healthz").status_code == 200


@pytest.mark.parametrize(
    ("region", "bucket", "url"),
    [
        ("me-south-1", "avatars", "https://avatars.s3.me-south-1.amazonaws.com/"),
        ("eu-west-1", "avatars", "https://avatars.s3.eu-west-1.amazonaws.com/"),
        ("us-east-1", "avatars", "https://avatars.s3.amazonaws.com/"),
        ("cn-north-1", "avatars", "https://avatars.s3.cn-north-1.amazonaws.com.cn/"),
        ("me-south-1", "my.avatars", "https://s3.me-south-1.amazonaws.com/my.avatars"),
    ],
)
def test_on_aws_a_form_goes_to_the_buckets_own_region(
    make_settings: Callable[..., Settings], region: str, bucket: str, url: str
) -> None:
    """Not the global host boto3 signs for by itself, which a bucket of a region opened since
    2019 refuses (400 IllegalLocationConstraint) and an older one redirects (boto3#2187)."""
    settings = make_settings(s3_endpoint_url=None, s3_region=region)
    form = S3Uploads(settings.vendor(S3Settings)).mint(
        S3UploadRequest.model_validate({"bucket": bucket, "key": "u/42.png"})
    )
    assert form.url == url
    assert f"/{region}/s3/aws4_request" in form.fields["x-amz-credential"]

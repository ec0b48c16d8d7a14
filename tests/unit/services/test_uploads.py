"""The one path of every upload store (services/uploads.py), through each store's route: keys
read as paths, prefixes compared segment by segment, and the contract's order of refusals."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.providers.registry import UPLOAD_STORES
from tests.support.harness.api import assert_problem, error_locs
from tests.support.harness.clients import QINIU, api_clients, auth, bucket
from tests.support.peers.qiniu import check_token

STORES = list(UPLOAD_STORES)  # every registered store: a new one is held to the same path
# Keys a store keeps as written but what serves them reads as another path.
BAD_KEYS = [
    "../x.png",
    "u/./../x",
    "/u/1.png",
    "u//1.png",
    "u/1.png/",
    "u/.",
    "u/..",
    "u\\..\\x.png",
    "u/1\x00.png",
    "u/1\x1b.png",
    "u/1\x85.png",
]
BAD_PREFIXES = ["../", "u/./", "/u/", "u//", "u/../../alpha/", "u\\", "u/\x7f/"]


def mint(client: FlaskClient, store: str, body: dict[str, Any], who: str = "tester") -> Any:
    return client.post(f"/v1/uploads/{store}/token", json={"bucket": bucket(store), **body},
                       headers=auth(who))  # fmt: skip


def signed_key(store: str, answer: dict[str, Any]) -> str:
    """The key (or prefix) an answer lets the browser write: Qiniu's scope, a form's key field."""
    if "fields" in answer:
        key: str = answer["fields"]["key"]
        return key.removesuffix("${filename}")
    secrets = {"access_key": QINIU["qiniu_access_key"], "secret_key": QINIU["qiniu_secret_key"]}
    return str(check_token(answer["token"], **secrets)["scope"]).split(":", 1)[1]


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    ("field", "value"),
    [*(("key", key) for key in BAD_KEYS), *(("key_prefix", prefix) for prefix in BAD_PREFIXES)],
)
def test_a_key_or_prefix_that_is_no_plain_path_is_422_naming_it(
    client: FlaskClient, store: str, field: str, value: str
) -> None:
    body = assert_problem(mint(client, store, {field: value}), 422)
    assert error_locs(body) == [["body", field]]


@pytest.mark.parametrize("store", STORES)
def test_a_prefix_is_signed_as_whole_segments(client: FlaskClient, store: str) -> None:
    for asked in ("u/42", "u/42/"):
        answer = mint(client, store, {"key_prefix": asked})
        assert answer.status_code == 200, answer.get_json()
        assert signed_key(store, answer.get_json()) == "u/42/"
    # Dots inside a segment are a name like any other.
    assert mint(client, store, {"key": "u/.well/known..png"}).status_code == 200


@pytest.mark.parametrize("store", STORES)
@pytest.mark.parametrize(
    ("body", "allowed"),
    [
        ({"key": "u/uploader/1.png"}, True),
        ({"key": "u/uploader/a/b/1.png"}, True),
        ({"key_prefix": "u/uploader/"}, True),
        ({"key_prefix": "u/uploader"}, True),  # the same prefix, signed with its "/"
        ({"key_prefix": "u/uploader/photos"}, True),
        ({"key": "u/uploaderx/1.png"}, False),  # a string prefix of it, not a segment
        ({"key_prefix": "u/uploaderx/"}, False),
        ({"key_prefix": "u/uploade"}, False),
        ({"key": "u/uploader"}, False),  # the folder's name itself is not under it
        ({"key_prefix": "u/"}, False),
    ],
)
def test_a_clients_prefix_confines_segment_by_segment(
    client: FlaskClient, store: str, body: dict[str, Any], allowed: bool
) -> None:
    answer = mint(client, store, body, who="uploader")
    if allowed:
        assert answer.status_code == 200, answer.get_json()
        assert signed_key(store, answer.get_json()).startswith("u/uploader/")
    else:
        assert "'u/uploader/'" in assert_problem(answer, 403)["detail"]


@pytest.mark.parametrize(("store", "refused"), [("s3", True), ("oss", False), ("gcs", False)])
def test_a_dollar_in_a_key_is_refused_where_the_stores_policy_cannot_match_it(
    client: FlaskClient, store: str, refused: bool
) -> None:
    """S3 reads a policy's $ as its own: a form for u/a$$b.png is refused at the upload
    (boto3#4514), so it is 422 at the door; Cloud Storage takes it as written (its conformance
    tests sign $test-object-é), and the other stores are not known to refuse it."""
    for field, value in (("key", "u/a$$b.png"), ("key_prefix", "u/$reports/")):
        answer = mint(client, store, {field: value})
        if refused:
            assert error_locs(assert_problem(answer, 422)) == [["body", field]]
        else:
            assert answer.status_code == 200, answer.get_json()


@pytest.mark.parametrize("store", STORES)
def test_the_escape_the_issue_found_is_refused(client: FlaskClient, store: str) -> None:
    # A string check let this through: it starts with the client's prefix.
    for key in ("u/uploader/../../alpha/x", "u/uploader/..%2f..%2falpha/x"):
        escape = {"key": key}  # the second: the climb, its slashes percent-encoded
        assert error_locs(assert_problem(mint(client, store, escape, who="uploader"), 422)) == [
            ["body", "key"]
        ]


@pytest.mark.parametrize("store", STORES)
def test_refusals_come_body_then_bucket_then_prefix(client: FlaskClient, store: str) -> None:
    foreign = {"bucket": bucket(store, "invoices")}  # the shop's
    # A bad key in a foreign bucket: the body first.
    bad = mint(client, store, {**foreign, "key": "../x.png"}, who="uploader")
    assert error_locs(assert_problem(bad, 422)) == [["body", "key"]]
    # A key outside the prefix in a foreign bucket: the bucket first.
    outside = mint(client, store, {**foreign, "key": "elsewhere/x.png"}, who="uploader")
    assert "invoices" in assert_problem(outside, 403)["detail"]
    outside = mint(client, store, {"key": "elsewhere/x.png"}, who="uploader")
    assert "may only upload keys under" in assert_problem(outside, 403)["detail"]
    both = mint(client, store, {**foreign, "key": "u/1.png", "key_prefix": "u/"})
    assert error_locs(assert_problem(both, 422)) == [["body", "key_prefix"]]


@pytest.fixture
def unslashed(make_settings: Callable[..., Settings]) -> Flask:
    """An app whose uploader is confined to ``u/uploader``, written without its "/"."""
    clients = [
        c.model_copy(update={"key_prefixes": dict.fromkeys(c.key_prefixes, "u/uploader")})
        if c.client == "uploader" else c
        for c in api_clients()
    ]  # fmt: skip
    return create_app(make_settings(api_keys=clients))


@pytest.mark.parametrize("store", STORES)
def test_a_prefix_without_its_slash_is_the_same_prefix(unslashed: Flask, store: str) -> None:
    client = unslashed.test_client()
    given = mint(client, store, {}, who="uploader")
    assert signed_key(store, given.get_json()) == "u/uploader/"
    assert_problem(mint(client, store, {"key": "u/uploaderx/1.png"}, who="uploader"), 403)
    assert mint(client, store, {"key": "u/uploader/1.png"}, who="uploader").status_code == 200

"""The local OSS of the tests (``tests/support/peers/oss.py``) against forms Aliyun's own code
signs: the PostObject V4 sample of ``alibabacloud-oss-v2`` (``sample/post_object.py``, kept as it
is in ``tests/support/peers/aliyun/``), run as the script it is with only its POST sent here. It
takes the sample's form and refuses the same made with another secret, so a test that passes
through it means OSS would take the form; then each thing OSS refuses, on forms of its own."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import runpy
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

# Imported before the sample runs: the SDK's own "import requests" must get requests itself.
import alibabacloud_oss_v2  # noqa: F401
import pytest
import requests

from tests.support.peers.oss import ACCESS_KEY_ID, ACCESS_KEY_SECRET, REGION, FakeOss, derived_key
from tests.support.peers.s3 import post_form

SAMPLE = Path(__file__).parents[1] / "support" / "peers" / "aliyun" / "post_object.py.txt"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4


@pytest.fixture(scope="module")
def oss() -> Iterator[FakeOss]:
    server = FakeOss(("avatars",)).start()
    yield server
    server.stop()


class ToTheLocalOss:
    """``requests`` as the sample sees it: its one POST, to the bucket's Aliyun host, goes to
    the local OSS's bucket instead (path-style); the answer is kept."""

    def __init__(self, oss: FakeOss) -> None:
        self.oss = oss
        self.answers: list[requests.Response] = []

    def post(self, url: str, data: bytes, headers: dict[str, str]) -> requests.Response:
        assert url == f"http://avatars.oss-{REGION}.aliyuncs.com"
        answer = requests.post(f"{self.oss.url}/avatars", data=data, headers=headers, timeout=10)
        self.answers.append(answer)
        return answer


def run_the_sample(
    oss: FakeOss, monkeypatch: pytest.MonkeyPatch, secret: str = ACCESS_KEY_SECRET
) -> requests.Response:
    """Aliyun's sample, as ``python post_object.py --region … --bucket … --key …`` with its
    credentials in the environment (the SDK's EnvironmentVariableCredentialsProvider)."""
    transport = ToTheLocalOss(oss)
    monkeypatch.setenv("OSS_ACCESS_KEY_ID", ACCESS_KEY_ID)
    monkeypatch.setenv("OSS_ACCESS_KEY_SECRET", secret)
    argv = ["post_object.py", "--region", REGION, "--bucket", "avatars", "--key", "sample.txt"]
    monkeypatch.setattr(sys, "argv", argv)
    monkeypatch.setitem(sys.modules, "requests", transport)
    runpy.run_path(str(SAMPLE), run_name="__main__")
    (answer,) = transport.answers
    return answer


def test_the_form_aliyuns_sample_signs_is_stored(
    oss: FakeOss, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = run_the_sample(oss, monkeypatch)
    assert answer.status_code == 204, answer.text
    assert oss.objects[("avatars", "sample.txt")].body == b"hi oss"


def test_the_samples_form_with_another_secret_is_refused(
    oss: FakeOss, monkeypatch: pytest.MonkeyPatch
) -> None:
    answer = run_the_sample(oss, monkeypatch, secret="not-" + ACCESS_KEY_SECRET)
    refused(answer, 403, "SignatureDoesNotMatch")


def form(
    *,
    key: Any = ("eq", "$key", "u/42.png"),
    content_type: Any = {"Content-Type": "image/png"},  # noqa: B006 - read only
    expires: int = 600,
    secret: str = ACCESS_KEY_SECRET,
    signing: bool = True,
    at: datetime | None = None,
) -> dict[str, Any]:
    """A form as the PostObject V4 page builds one, written here (not Notifier's code)."""
    now = at or datetime.now(UTC)
    date = now.strftime("%Y%m%d")
    fields = {
        "x-oss-signature-version": "OSS4-HMAC-SHA256",
        "x-oss-credential": f"{ACCESS_KEY_ID}/{date}/{REGION}/oss/aliyun_v4_request",
        "x-oss-date": now.strftime("%Y%m%dT%H%M%SZ"),
    }
    conditions: list[Any] = [{"bucket": "avatars"}, list(key), ["content-length-range", 1, 2048]]
    conditions += [content_type] if content_type else []
    conditions += [{n: v} for n, v in fields.items()] if signing else []
    expiration = (now + timedelta(seconds=expires)).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    policy = base64.b64encode(
        json.dumps({"expiration": expiration, "conditions": conditions}).encode()
    ).decode()
    signature = hmac.new(derived_key(secret, date, REGION), policy.encode(), hashlib.sha256)
    return {
        "url": "",
        "fields": {
            "key": key[2] if key[0] == "eq" else key[2] + "${filename}",
            "Content-Type": "image/png",
            "policy": policy,
            **fields,
            "x-oss-signature": signature.hexdigest(),
        },
    }


def upload(
    oss: FakeOss, post: dict[str, Any], body: bytes = PNG, filename: str = "me.png", **change: Any
) -> requests.Response:
    return post_form({**post, "url": f"{oss.url}/avatars"}, body, filename, **change)


def refused(answer: requests.Response, status: int, code: str) -> str:
    assert answer.status_code == status, answer.text
    assert f"<Code>{code}</Code>" in answer.text, answer.text
    return answer.text


def test_a_right_form_is_stored(oss: FakeOss) -> None:
    assert upload(oss, form()).status_code == 204
    stored = oss.objects[("avatars", "u/42.png")]
    assert (stored.body, stored.content_type) == (PNG, "image/png")


def test_a_prefix_takes_the_files_name_and_holds_keys_under_it(oss: FakeOss) -> None:
    post = form(key=("starts-with", "$key", "u/7/"))
    assert upload(oss, post, filename="a.png").status_code == 204
    assert ("avatars", "u/7/a.png") in oss.objects
    refused(upload(oss, post, key="other/x.png"), 403, "AccessDenied")


def test_a_wrong_secret_key_or_byte_is_refused(oss: FakeOss) -> None:
    post = form()
    refused(upload(oss, form(secret="another-secret")), 403, "SignatureDoesNotMatch")
    refused(upload(oss, post, change={"x-oss-signature": "0" * 64}), 403, "SignatureDoesNotMatch")
    other = form(key=("eq", "$key", "anything/else.png"))
    refused(upload(oss, post, policy=other["fields"]["policy"]), 403, "SignatureDoesNotMatch")
    credential = post["fields"]["x-oss-credential"].replace(ACCESS_KEY_ID, "LTAI5tSomeoneElse")
    refused(upload(oss, post, change={"x-oss-credential": credential}), 403, "InvalidAccessKeyId")


def test_each_condition_is_held(oss: FakeOss) -> None:
    post = form()
    refused(upload(oss, post, key="u/43.png"), 403, "AccessDenied")
    refused(upload(oss, post, change={"Content-Type": "text/html"}), 403, "AccessDenied")
    refused(upload(oss, post, body=b"x" * 2049), 400, "EntityTooLarge")
    refused(upload(oss, post, body=b""), 400, "EntityTooSmall")
    whole_type = form(content_type=["starts-with", "$Content-Type", "image/"])
    assert upload(oss, whole_type, change={"Content-Type": "image/gif"}).status_code == 204
    refused(upload(oss, whole_type, change={"Content-Type": "text/plain"}), 403, "AccessDenied")
    listed = form(content_type=["in", "$content-type", ["image/png", "image/jpeg"]])
    assert upload(oss, listed).status_code == 204
    refused(upload(oss, listed, change={"Content-Type": "image/gif"}), 403, "AccessDenied")


def test_the_signing_fields_must_be_signed_in_the_policy(oss: FakeOss) -> None:
    text = refused(upload(oss, form(signing=False)), 403, "AccessDenied")
    assert "x-oss-signature-version" in text


def test_an_expired_form_or_a_date_far_off_is_refused(oss: FakeOss) -> None:
    post = form(expires=60)
    oss.clock_offset = 61  # the server's clock a minute on: the form is past its expiration
    try:
        text = refused(upload(oss, post), 403, "AccessDenied")
    finally:
        oss.clock_offset = 0
    assert "Policy expired" in text
    assert upload(oss, post).status_code == 204  # the same form, in time
    ahead = form(at=datetime.now(UTC) + timedelta(minutes=20))
    refused(upload(oss, ahead), 403, "RequestTimeTooSkewed")


def test_the_file_must_be_the_last_field(oss: FakeOss) -> None:
    fields = form()["fields"]
    parts = [*((name, (None, value)) for name, value in fields.items())]
    answer = requests.post(
        f"{oss.url}/avatars",
        files=[("file", ("me.png", PNG)), *parts],
        timeout=10,
    )
    refused(answer, 400, "InvalidArgument")

"""A local Tencent COS that takes browser form uploads (POST Object) and checks them as Tencent
documents it ("POST Object", "Signature protection": https://www.tencentcloud.com/document/
product/436/14690; docs/research/cos-gcs-post-forms.md).

It checks: the fields COS requires (``key``, ``policy``, ``q-sign-algorithm`` = ``sha1``,
``q-ak``, ``q-key-time``, ``q-signature``, then ``file``); the SecretId; the key time
(``<start>;<end>``, now within it); the signature, computed here from Tencent's steps alone (the
SignKey is the hex HMAC-SHA1 of the key time keyed with the SecretKey, the signature the hex
HMAC-SHA1 of the hex SHA-1 of the policy's JSON text keyed with the SignKey); the policy's
``expiration``; that the policy names ``q-sign-algorithm``, ``q-ak`` and ``q-sign-time`` (the
key time) as the form does; and every condition against the upload as it is: ``bucket`` against
the bucket posted to, ``key`` after ``${filename}`` is replaced by the file's name (COS: "the
object key will be processed to the final object key before the policy is verified"), exact
(``{"f": v}``, ``["eq", "$f", v]``) and ``starts-with`` matches, ``content-length-range`` on the
file's size; a field a condition names must be in the form (but ``bucket``). Names are compared
without regard to case. Its own tests (``tests/unit/test_cos_peer.py``) hold it to the worked
example of Tencent's page, values computed by Tencent.

Errors answer as COS does: XML ``<Error><Code>…</Code><Message>…</Message></Error>``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.support.peers.s3 import FakeS3, Refused, Stored

SECRET_ID = "AKIDtestcos0000000000000000000000001"
SECRET_KEY = "test-cos-secret-key-000000000000"
BUCKET = "avatars-1250000000"
REQUIRED = ("key", "policy", "q-sign-algorithm", "q-ak", "q-key-time", "q-signature")
# The policy's conditions COS requires, by the form field each must equal.
SIGNING = {"q-sign-algorithm": "q-sign-algorithm", "q-ak": "q-ak", "q-sign-time": "q-key-time"}


def cos_signature(secret_key: str, key_time: str, policy_text: bytes) -> str:
    """The q-signature of Tencent's steps 4 to 6, for a policy's JSON text."""
    sign_key = hmac.new(secret_key.encode(), key_time.encode(), hashlib.sha1).hexdigest()
    string_to_sign = hashlib.sha1(policy_text).hexdigest()
    return hmac.new(sign_key.encode(), string_to_sign.encode(), hashlib.sha1).hexdigest()


class FakeCos(FakeS3):
    """Path-style buckets (``POST /<bucket>``) on 127.0.0.1; ``objects`` by (bucket, key).
    ``clock`` is the server's time (Unix seconds): a form seen later, or the past of Tencent's
    example. Served as the local S3 is (its server, its XML errors); checked as COS checks."""

    def __init__(
        self,
        buckets: tuple[str, ...] = (BUCKET,),
        secret_id: str = SECRET_ID,
        secret_key: str = SECRET_KEY,
    ) -> None:
        super().__init__(buckets)
        self.secret_id, self.secret_key = secret_id, secret_key
        # The local S3's clock_offset (a form seen later) moves it too.
        self.clock: Callable[[], float] = lambda: time.time() + self.clock_offset

    def start(self) -> FakeCos:
        super().start()
        return self

    def _handle(self, request: Request) -> Response:
        bucket = self._bucket(request)
        self._file_last(request)
        upload = request.files.get("file")
        if upload is None:
            raise Refused(400, "InvalidArgument", "the form has no file")
        fields = {name.lower(): value for name, value in request.form.items()}
        for name in REQUIRED:
            if name not in fields:
                raise Refused(400, "InvalidArgument", f"the form has no {name}")
        body = upload.read()
        policy = self._authenticate(fields)
        key = fields["key"].replace("${filename}", upload.filename or "")
        self._check_policy(policy, {**fields, "key": key, "bucket": bucket}, len(body))
        with self.lock:
            self.objects[(bucket, key)] = Stored(
                body, fields.get("content-type", "application/octet-stream")
            )
        return Response(status=204, headers={"Location": f"{self.url}/{bucket}/{key}"})

    def _authenticate(self, fields: dict[str, str]) -> dict[str, Any]:
        if fields["q-sign-algorithm"] != "sha1":
            raise Refused(400, "InvalidArgument", "q-sign-algorithm must be sha1")
        if fields["q-ak"] != self.secret_id:
            raise Refused(403, "InvalidAccessKeyId", "The SecretId you provided does not exist.")
        start, _, end = fields["q-key-time"].partition(";")
        if not (start.isdigit() and end.isdigit()):
            raise Refused(400, "InvalidArgument", "q-key-time is not <start>;<end>")
        if not int(start) <= self.clock() <= int(end):
            raise Refused(403, "AccessDenied", "Request has expired (outside q-key-time)")
        try:
            text = base64.b64decode(fields["policy"], validate=True)
            policy: dict[str, Any] = json.loads(text)
        except (binascii.Error, ValueError):
            raise Refused(
                400, "InvalidPolicyDocument", "the policy is not base64 of JSON"
            ) from None
        expected = cos_signature(self.secret_key, fields["q-key-time"], text)
        if not hmac.compare_digest(expected, fields["q-signature"]):
            raise Refused(403, "SignatureDoesNotMatch", "The Signature you specified is invalid.")
        return policy

    def _check_policy(self, policy: dict[str, Any], fields: dict[str, str], size: int) -> None:
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        if self.clock() > expiration.timestamp():
            raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        exact: dict[str, str] = {}
        for condition in policy["conditions"]:
            if isinstance(condition, dict):
                ((name, value),) = condition.items()
                exact[name.lower()] = value
                condition = ["eq", f"${name}", value]
            check_condition(condition, fields, size)
        for named, field in SIGNING.items():
            if exact.get(named) != fields[field]:
                raise Refused(
                    403, "AccessDenied", f"the policy must name {named} as the form's {field}"
                )


def check_condition(condition: list[Any], fields: dict[str, str], size: int) -> None:
    """Refuse the upload (``fields`` by lower-cased name, the file's ``size``) unless it meets
    one condition of a policy."""
    op = str(condition[0]).lower()
    if op == "content-length-range":
        if not int(condition[1]) <= size <= int(condition[2]):
            raise Refused(400, "EntityTooLarge" if size > int(condition[2]) else "EntityTooSmall",
                          f"the file's {size} bytes are outside {json.dumps(condition)}")  # fmt: skip
        return
    if op not in ("eq", "starts-with"):
        raise Refused(400, "InvalidPolicyDocument", f"unknown condition {condition[0]!r}")
    name = str(condition[1]).removeprefix("$").lower()
    value = fields.get(SIGNING.get(name, name))  # the policy's q-sign-time is the q-key-time
    if value is None:
        raise Refused(403, "AccessDenied", f"the form has no {name}, which the policy names")
    if value == condition[2] if op == "eq" else value.startswith(condition[2]):
        return
    raise Refused(403, "AccessDenied", f"Invalid according to Policy: {json.dumps(condition)}")

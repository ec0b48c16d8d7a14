"""A local Aliyun OSS that takes browser form uploads (PostObject) and checks them as OSS does.

From Aliyun's "PostObject" and "POST V4 signature" pages (docs/research/oss-post-object.md):
the fields a V4 form must have; ``x-oss-signature-version`` ``OSS4-HMAC-SHA256``; the
credential ``<AccessKeyId>/<date>/<region>/oss/aliyun_v4_request`` (a known key, this region,
the date of ``x-oss-date``); ``x-oss-date`` at most 15 minutes ahead of the clock and 7 days
behind it; the signature, hex HMAC-SHA256 of the base64 policy with the key derived from
``"aliyun_v4" + secret`` through the date, the region, ``oss`` and ``aliyun_v4_request``; the
policy's expiration; the signing fields among its conditions, equal to the form's; every
condition (``{field: value}``, ``eq``, ``starts-with``, ``in``, ``not-in``,
``content-length-range`` against the file's real size); the file the form's last field. It
derives the key itself, from the page, not with Notifier's code; its own tests
(``tests/unit/test_oss_peer.py``) hold it to what Aliyun's own sample signs.

Errors answer as OSS does: XML ``<Error><Code>…</Code><Message>…</Message></Error>``; 403
``SignatureDoesNotMatch``, ``InvalidAccessKeyId`` or ``AccessDenied`` (a policy that fails or
expired), 400 ``EntityTooLarge`` / ``EntityTooSmall`` / ``InvalidArgument`` /
``InvalidPolicyDocument``. Buckets are path-style (``POST /<bucket>``), as under an endpoint.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from werkzeug.wrappers import Request, Response

from tests.support.peers.s3 import FakeS3, Refused, Stored, signed_policy

ACCESS_KEY_ID = "LTAI5tTestKey000000001"
ACCESS_KEY_SECRET = "test-oss-access-key-secret-00000000"
REGION = "cn-hangzhou"
ALGORITHM = "OSS4-HMAC-SHA256"
SIGNING = ("x-oss-signature-version", "x-oss-credential", "x-oss-date")
REQUIRED = ("key", "policy", *SIGNING, "x-oss-signature")
SKEW = timedelta(minutes=15)  # how far ahead of OSS's clock x-oss-date may be
LONGEST = timedelta(days=7)  # how long after x-oss-date a V4 signature is good


def derived_key(secret: str, date: str, region: str) -> bytes:
    """The page's SigningKey: HMAC-SHA256 of the date, region, "oss", "aliyun_v4_request" in
    turn, starting from "aliyun_v4" + the AccessKey secret."""
    date_key = hmac.new(f"aliyun_v4{secret}".encode(), date.encode(), hashlib.sha256).digest()
    region_key = hmac.new(date_key, region.encode(), hashlib.sha256).digest()
    service_key = hmac.new(region_key, b"oss", hashlib.sha256).digest()
    return hmac.new(service_key, b"aliyun_v4_request", hashlib.sha256).digest()


class FakeOss(FakeS3):
    """The local S3's server (its buckets, objects, refusals and clock), answering PostObject
    as OSS does."""

    def _handle(self, request: Request) -> Response:
        bucket = self._bucket(request, "PostObject")
        self._file_last(request)
        form = request.form
        upload = request.files.get("file")
        if upload is None and "file" not in form:
            raise Refused(400, "InvalidArgument", "The file must be the last form field.")
        for name in REQUIRED:
            if name not in form:
                raise Refused(400, "InvalidArgument", f"the form has no {name} field")
        # A file part without a file name (Aliyun's sample sends one) is read as a field.
        body = upload.read() if upload is not None else form["file"].encode()
        policy = self._authenticate(form)
        fields = {name.lower(): value for name, value in form.items() if name != "file"}
        self._check_conditions(policy, form, {**fields, "bucket": bucket}, len(body))
        filename = upload.filename if upload is not None else None
        key = form["key"].replace("${filename}", filename or "")
        # The PostObject page: x-oss-content-type, then the file part's own Content-Type, then
        # the Content-Type field.
        stored_type = (
            fields.get("x-oss-content-type")
            or (upload.content_type if upload is not None else None)
            or fields.get("content-type", "application/octet-stream")
        )
        with self.lock:
            self.objects[(bucket, key)] = Stored(body, stored_type)
        status = int(fields.get("success_action_status", "204"))
        return Response(status=status if status in (200, 201, 204) else 204)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(time.time() + self.clock_offset, UTC)

    def _authenticate(self, form: Any) -> dict[str, Any]:
        if form["x-oss-signature-version"] != ALGORITHM:
            raise Refused(400, "InvalidArgument", f"x-oss-signature-version must be {ALGORITHM}")
        parts = form["x-oss-credential"].split("/")
        if len(parts) != 5 or parts[3:] != ["oss", "aliyun_v4_request"]:
            raise Refused(400, "InvalidArgument", "x-oss-credential is malformed")
        access_key, date, region = parts[:3]
        if access_key != ACCESS_KEY_ID:
            raise Refused(403, "InvalidAccessKeyId", "The OSS Access Key Id you provided does not exist in our records.")  # fmt: skip
        if region != REGION:
            raise Refused(400, "InvalidArgument", f"Invalid signing region in Authorization header: {region}")  # fmt: skip
        try:
            signed = datetime.strptime(form["x-oss-date"], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        except ValueError:
            raise Refused(400, "InvalidArgument", "x-oss-date is not YYYYMMDDTHHMMSSZ") from None
        if signed.strftime("%Y%m%d") != date:
            raise Refused(400, "InvalidArgument", "x-oss-date is not the credential's date")
        now = self._now()
        if signed - now > SKEW or now - signed > LONGEST:
            raise Refused(403, "RequestTimeTooSkewed", "x-oss-date is too far from the time now")
        key = derived_key(ACCESS_KEY_SECRET, date, region)
        return signed_policy(form["policy"], key, form["x-oss-signature"])

    def _check_conditions(
        self, policy: dict[str, Any], form: Any, fields: dict[str, str], size: int
    ) -> None:
        try:  # ISO 8601 in UTC: "2023-12-03T13:00:00.000Z"
            expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        except (KeyError, AttributeError, ValueError):
            raise Refused(400, "InvalidPolicyDocument", "Invalid Policy: expiration") from None
        if self._now() > expiration:
            raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        conditions = policy.get("conditions")
        if not isinstance(conditions, list):
            raise Refused(400, "InvalidPolicyDocument", "Invalid Policy: conditions")
        # The V4 fields must be signed as the form carries them (x-oss-date: the page says the
        # policy's must equal the form's).
        for name in SIGNING:
            if {name: form[name]} not in conditions:
                raise Refused(403, "AccessDenied", f"Invalid according to Policy: {name} is not in the policy")  # fmt: skip
        for condition in conditions:
            _hold(_as_list(condition), fields, size)


def _as_list(condition: Any) -> list[Any]:
    if isinstance(condition, dict) and len(condition) == 1:
        ((name, value),) = condition.items()
        return ["eq", f"${name}", value]
    if isinstance(condition, list) and len(condition) == 3:
        return condition
    raise Refused(400, "InvalidPolicyDocument", f"Invalid Policy: condition {condition!r}")


def _hold(condition: list[Any], fields: dict[str, str], size: int) -> None:
    """Refuse the upload unless ``condition`` holds of the form's fields and the file's size."""
    op, subject, value = condition
    if op == "content-length-range":
        if not (isinstance(subject, int) and isinstance(value, int) and 0 <= subject <= value):
            raise Refused(400, "InvalidPolicyDocument", "Invalid Policy: content-length-range")
        if size > value:
            raise Refused(400, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size.")  # fmt: skip
        if size < subject:
            raise Refused(400, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed size.")  # fmt: skip
        return
    if not isinstance(subject, str) or not subject.startswith("$"):
        raise Refused(400, "InvalidPolicyDocument", f"Invalid Policy: {json.dumps(condition)}")
    given = fields.get(subject[1:].lower(), "")
    if op not in ("eq", "starts-with", "in", "not-in"):
        raise Refused(400, "InvalidPolicyDocument", f"Invalid Policy: unknown mode {op!r}")
    held = (
        given == value if op == "eq"
        else given.startswith(value) if op == "starts-with"
        else (given in value) == (op == "in")
    )  # fmt: skip
    if not held:
        raise Refused(
            403,
            "AccessDenied",
            f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
        )

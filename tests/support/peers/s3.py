"""A local S3 that takes browser form uploads (POST Object) and checks them as S3 does.

moto's S3 server (5.x) stores whatever a form POST brings: it checks neither the policy's
conditions nor its signature (``_bucket_response_post`` in ``moto/s3/responses.py``), so it
could not tell a good form from a forged one. This server checks, from AWS's "Authenticating
Requests in Browser-Based Uploads Using POST (AWS Signature Version 4)" and "Creating a POST
Policy": the fields S3 requires; the SigV4 signature of the policy (the signing key derived from
the secret, the credential's date, region and ``s3``); the credential's access key and region;
the policy's expiration; every condition (``eq``, ``starts-with``, ``content-length-range``);
and that every field of the form but the exempt ones is named by a condition. Its own tests
(``tests/unit/test_s3_peer.py``) hold it to forms made by boto3 directly.

Errors answer as S3 does: XML ``<Error><Code>…</Code><Message>…</Message></Error>``, 403 for an
authentication or a policy failure, 400 ``EntityTooLarge`` / ``EntityTooSmall`` for the size.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Self
from xml.sax.saxutils import escape

import requests
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from notifier.embedded import free_port
from tests.support.peers.sigv4 import signing_key

ACCESS_KEY_ID = "AKIATESTKEY0000000001"
SECRET_ACCESS_KEY = "test-secret-access-key-0000000000000000"
REGION = "eu-west-1"
# Fields a policy need not name (AWS: "x-amz-signature, file, policy, and field names that
# have an x-ignore- prefix").
EXEMPT = {"x-amz-signature", "file", "policy"}
REQUIRED = ("key", "policy", "x-amz-algorithm", "x-amz-credential", "x-amz-date", "x-amz-signature")


@dataclass
class Stored:
    """An object a form upload stored."""

    body: bytes
    content_type: str


class Refused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class FakeS3:
    """Path-style buckets (``POST /<bucket>``) on 127.0.0.1; ``objects`` by (bucket, key)."""

    def __init__(self, buckets: tuple[str, ...] = ("avatars",)) -> None:
        self.buckets = set(buckets)
        self.objects: dict[tuple[str, str], Stored] = {}
        self.refusals: list[tuple[int, str, str]] = []
        self.clock_offset = 0.0  # seconds added to the server's clock: a form seen later
        self.lock = threading.Lock()
        self.port = free_port()
        self._server: BaseWSGIServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        self._server = make_server("127.0.0.1", self.port, self._app, threaded=True)
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def _app(self, environ: dict[str, Any], start_response: Any) -> Any:
        request = Request(environ)
        try:
            response = self._handle(request)
        except Refused as e:
            with self.lock:
                self.refusals.append((e.status, e.code, e.message))
            xml = (
                f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{e.code}</Code>'
                f"<Message>{escape(e.message)}</Message></Error>"
            )
            response = Response(xml, status=e.status, content_type="application/xml")
        finally:
            request.close()  # the uploaded file's spool, read or not
        # A page on another origin reads the answer of its fetch (the bucket's CORS rule).
        response.headers["Access-Control-Allow-Origin"] = "*"
        return response(environ, start_response)

    def _bucket(self, request: Request, operation: str = "POST Object") -> str:
        """The bucket a form is posted to (path-style, ``POST /<bucket>``), refused as the
        store refuses a request for any other path or an unknown bucket."""
        bucket = request.path.strip("/")
        if request.method != "POST" or "/" in bucket:
            raise Refused(405, "MethodNotAllowed", f"only {operation} to /<bucket> is served")
        if bucket not in self.buckets:
            raise Refused(404, "NoSuchBucket", "The specified bucket does not exist.")
        return bucket

    def _handle(self, request: Request) -> Response:
        bucket = self._bucket(request)
        self._file_last(request)
        form = request.form
        upload = request.files.get("file")
        if upload is None:
            raise Refused(
                400, "InvalidArgument", "POST requires exactly one file upload per request"
            )
        for name in REQUIRED:
            if name not in form:
                raise Refused(
                    400, "InvalidArgument", f"Bucket POST must contain a field named '{name}'"
                )
        fields = {name.lower(): value for name, value in form.items()}
        body = upload.read()
        policy = self._authenticate(fields)
        key = fields["key"].replace("${filename}", upload.filename or "")
        self._check_policy(policy, {**fields, "bucket": bucket}, len(body))
        with self.lock:
            self.objects[(bucket, key)] = Stored(
                body, fields.get("content-type", "binary/octet-stream")
            )
        status = int(fields.get("success_action_status", "204"))
        return Response(status=status if status in (200, 201, 204) else 204)

    def _file_last(self, request: Request) -> None:
        """Refuse a form whose last part is not its file (S3, COS and OSS read nothing after
        it: a field sent later, the page's Content-Type say, is not in the upload)."""
        boundary = request.mimetype_params.get("boundary", "")
        raw = request.get_data()  # kept: the form is parsed from it after
        parts = raw.split(f"--{boundary}".encode())
        # [preamble, part, ..., part, "--" epilogue]
        if len(parts) < 3 or b'name="file"' not in parts[-2].split(b"\r\n\r\n", 1)[0]:
            raise Refused(400, "InvalidArgument", "The file must be the last form field.")

    def _authenticate(self, fields: dict[str, str]) -> dict[str, Any]:
        if fields["x-amz-algorithm"] != "AWS4-HMAC-SHA256":
            raise Refused(400, "InvalidArgument", "the algorithm must be AWS4-HMAC-SHA256")
        parts = fields["x-amz-credential"].split("/")
        if len(parts) != 5 or parts[3:] != ["s3", "aws4_request"]:
            raise Refused(400, "AuthorizationQueryParametersError", "malformed x-amz-credential")
        access_key, date, region = parts[:3]
        if access_key != ACCESS_KEY_ID:
            raise Refused(
                403,
                "InvalidAccessKeyId",
                "The AWS Access Key Id you provided does not exist in our records.",
            )
        if region != REGION:
            raise Refused(
                400,
                "AuthorizationHeaderMalformed",
                f"the region '{region}' is wrong; expecting '{REGION}'",
            )
        if not fields["x-amz-date"].startswith(date):
            raise Refused(403, "AccessDenied", "x-amz-date is not the credential's date")
        key = signing_key(SECRET_ACCESS_KEY, date, region)
        return signed_policy(fields["policy"], key, fields["x-amz-signature"])

    def _check_policy(self, policy: dict[str, Any], fields: dict[str, str], size: int) -> None:
        expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
        if datetime.fromtimestamp(time.time() + self.clock_offset, UTC) > expiration:
            raise Refused(403, "AccessDenied", "Invalid according to Policy: Policy expired.")
        named: set[str] = set()
        for condition in policy["conditions"]:
            if isinstance(condition, dict):
                ((name, value),) = condition.items()
                condition = ["eq", f"${name}", value]
            op = condition[0].lower()
            if op == "content-length-range":
                low, high = int(condition[1]), int(condition[2])
                if size > high:
                    raise Refused(
                        400,
                        "EntityTooLarge",
                        "Your proposed upload exceeds the maximum allowed size",
                    )
                if size < low:
                    raise Refused(
                        400,
                        "EntityTooSmall",
                        "Your proposed upload is smaller than the minimum allowed size",
                    )
                continue
            name = condition[1].lstrip("$").lower()
            named.add(name)
            value = fields.get(name, "")
            if op == "eq" and value == condition[2]:
                continue
            if op == "starts-with" and value.startswith(condition[2]):
                continue
            if op not in ("eq", "starts-with"):
                raise Refused(400, "InvalidPolicyDocument", f"unknown condition {condition[0]!r}")
            raise Refused(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Policy Condition failed: {json.dumps(condition)}",
            )
        extra = sorted(
            n for n in fields if n not in named and n not in EXEMPT and n != "bucket"
            and not n.startswith("x-ignore-")
        )  # fmt: skip
        if extra:
            raise Refused(
                403,
                "AccessDenied",
                f"Invalid according to Policy: Extra input fields: {', '.join(extra)}",
            )


def signed_policy(policy: str, key: bytes, signature: str) -> dict[str, Any]:
    """The policy of a form (base64 of JSON) whose ``signature`` is the hex HMAC-SHA256 of it
    with ``key`` (as S3's V4 and OSS's V4 sign it); refused otherwise."""
    expected = hmac.new(key, policy.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, signature):
        raise Refused(
            403,
            "SignatureDoesNotMatch",
            "The request signature we calculated does not match the signature you provided.",
        )
    try:
        read: dict[str, Any] = json.loads(base64.b64decode(policy, validate=True))
    except ValueError:
        raise Refused(400, "InvalidPolicyDocument", "the policy is not base64 of JSON") from None
    return read


def post_form(
    form: dict[str, Any],
    body: bytes,
    filename: str = "me.png",
    change: dict[str, str] | None = None,
    file_type: str | None = None,
    **plain: str,
) -> requests.Response:
    """POST a form (``{"url", "fields"}``, boto3's or Notifier's) as a browser's would: its
    fields, with ``change`` and ``plain`` over them, then the file (its part's own Content-Type
    ``file_type``, as a browser gives the file's)."""
    fields = {**form["fields"], **(change or {}), **plain}
    part = (filename, body) if file_type is None else (filename, body, file_type)
    return requests.post(form["url"], data=fields, files={"file": part}, timeout=10)

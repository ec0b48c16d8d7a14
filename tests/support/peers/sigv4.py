"""AWS Signature Version 4 as an AWS service checks it, for the tests' AWS stand-ins.

Read from AWS's "Create a signed AWS API request" (IAM User Guide) and "Elements of an AWS API
request signature", not from boto3's code: the canonical request (the method; the path, each
character outside the unreserved set percent-encoded, the path as it came counting as already
encoded once, as for every service but S3; the query's pairs encoded and sorted; the signed
headers, lower-case names with their values trimmed and inner runs of spaces made one, sorted;
the list of their names; the SHA-256 of the body as it came), the string to sign, and the key
derived from the secret down the date, the region, the service and ``aws4_request``. The
refusals answer as AWS's JSON services do (``x-amzn-ErrorType``, 400 or 403).

``tests/unit/test_ses_peer.py`` holds it to AWS's published test-suite vectors and to requests
boto3 signs itself.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import parse_qsl, quote

ALGORITHM = "AWS4-HMAC-SHA256"
SKEW_SECONDS = 5 * 60  # AWS refuses a request signed further from its clock: "Signature expired"
_AUTHORIZATION = re.compile(
    r"^AWS4-HMAC-SHA256 Credential=(?P<credential>[^,\s]+),\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+),\s*Signature=(?P<signature>[0-9a-f]{64})$"
)
_SPACES = re.compile(r"\s+")


class Refusal(Exception):
    """Why a signed request is refused, as AWS says it: the status, the error code, the message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message = status, code, message


@dataclass(frozen=True)
class Signed:
    """Whose request it is: the access key, and the credential's date, region and service."""

    access_key_id: str
    date: str
    region: str
    service: str


def signing_key(secret: str, date: str, region: str, service: str = "s3") -> bytes:
    """SigV4's signing key: HMAC-SHA256 down the chain date, region, service, aws4_request."""
    key = f"AWS4{secret}".encode()
    for part in (date, region, service, "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return key


def canonical_request(
    method: str, target: str, headers: Mapping[str, str], signed: list[str], body: bytes
) -> str:
    """The canonical request of ``method`` ``target`` (path and query, as on the request line)
    with ``headers`` (lower-case names) of which ``signed`` are signed."""
    path, _, query = target.partition("?")
    pairs = sorted(
        (quote(name, safe="-_.~"), quote(value, safe="-_.~"))
        for name, value in parse_qsl(query, keep_blank_values=True)
    )
    lines = [
        method.upper(),
        quote(path or "/", safe="/~"),
        "&".join(f"{name}={value}" for name, value in pairs),
        *(f"{name}:{_SPACES.sub(' ', headers.get(name, '').strip())}" for name in signed),
        "",
        ";".join(signed),
        hashlib.sha256(body).hexdigest(),
    ]
    return "\n".join(lines)


def verify(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    secrets: Mapping[str, str],
    region: str,
    service: str,
    now: datetime | None = None,
) -> Signed:
    """Check the request's ``Authorization`` (``headers`` with lower-case names) as AWS does;
    whose it is, or :class:`Refusal`."""
    if "authorization" not in headers:
        raise Refusal(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    given = _AUTHORIZATION.match(headers["authorization"].strip())
    if given is None:
        raise Refusal(400, "IncompleteSignatureException", "Authorization header is malformed")
    parts = given["credential"].split("/")
    if len(parts) != 5 or parts[4] != "aws4_request":
        raise Refusal(400, "IncompleteSignatureException", "Credential is malformed")
    signer = Signed(*parts[:4])
    secret = secrets.get(signer.access_key_id)
    if secret is None:
        raise Refusal(
            403, "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )  # fmt: skip
    if signer.region != region or signer.service != service:
        raise Refusal(
            403, "InvalidSignatureException",
            f"Credential should be scoped to a valid region and service ('{region}', '{service}').",
        )  # fmt: skip
    signed = given["signed"].split(";")
    if signed != sorted(signed) or not {"host", "x-amz-date"} <= set(signed):
        raise Refusal(
            400, "IncompleteSignatureException",
            "SignedHeaders must be sorted and name host and x-amz-date",
        )  # fmt: skip
    stamp = headers.get("x-amz-date", "")
    try:
        at = datetime.strptime(stamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    except ValueError:
        raise Refusal(400, "IncompleteSignatureException", "X-Amz-Date is malformed") from None
    if stamp[:8] != signer.date:
        raise Refusal(
            403, "InvalidSignatureException",
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date "
            "from HTTP",
        )  # fmt: skip
    if abs(((now or datetime.now(UTC)) - at).total_seconds()) > SKEW_SECONDS:
        raise Refusal(403, "InvalidSignatureException", f"Signature expired: {stamp}")
    request = canonical_request(method, target, headers, signed, body)
    scope = f"{signer.date}/{signer.region}/{signer.service}/aws4_request"
    to_sign = "\n".join((ALGORITHM, stamp, scope, hashlib.sha256(request.encode()).hexdigest()))
    key = signing_key(secret, signer.date, signer.region, signer.service)
    expected = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, given["signature"]):
        raise Refusal(
            403, "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. "
            "Check your AWS Secret Access Key and signing method.",
        )  # fmt: skip
    return signer

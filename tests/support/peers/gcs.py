"""Google Cloud Storage's side of a V4 POST policy form: a service account the tests own (its
JSON key file, as the Cloud console downloads one) and the checks Cloud Storage makes of a form
it is posted (docs/research/cos-gcs-post-forms.md): ``x-goog-signature`` is the hex RSA
PKCS#1 v1.5 SHA-256 signature of the base64 ``policy`` with the account's private key
(``GOOG4-RSA-SHA256``), checked here with its public key alone; the policy's conditions hold
for the form's fields.

No Cloud Storage stand-in runs: the signature is checked as Cloud Storage checks it, with the
key it would use, and the conditions as its policy language reads them.
"""

from __future__ import annotations

import base64
import json
import time
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

EMAIL = "uploads@notifier-test.iam.gserviceaccount.com"
PROJECT = "notifier-test"


@cache
def account_key() -> RSAPrivateKey:
    """The tests' service account's private key (made once a process: RSA keys take a while)."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def key_file(folder: Path, key: RSAPrivateKey | None = None) -> Path:
    """Write the service account's JSON key file into ``folder``; its path."""
    pem = (
        (key or account_key())
        .private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        .decode()
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "gcs-service-account.json"
    path.write_text(
        json.dumps(
            {
                "type": "service_account",
                "project_id": PROJECT,
                "private_key_id": "0123456789abcdef",
                "private_key": pem,
                "client_email": EMAIL,
                "client_id": "1",
                "token_uri": "https://oauth2.googleapis.com/token",
            }
        )
    )
    return path


def verifies(fields: dict[str, str], key: RSAPrivateKey | None = None) -> bool:
    """Whether ``x-goog-signature`` is the account's signature of ``policy``, as Cloud Storage
    checks a GOOG4-RSA-SHA256 form."""
    try:
        (key or account_key()).public_key().verify(
            bytes.fromhex(fields["x-goog-signature"]),
            fields["policy"].encode(),
            padding.PKCS1v15(),
            hashes.SHA256(),
        )
    except (InvalidSignature, ValueError):
        return False
    return True


def policy_of(fields: dict[str, str]) -> dict[str, Any]:
    """The policy a form carries, decoded."""
    found: dict[str, Any] = json.loads(base64.b64decode(fields["policy"]))
    return found


def holds(
    fields: dict[str, str],
    bucket: str,
    size: int,
    now: float | None = None,
    filename: str = "photo.png",
) -> bool:
    """Whether a form's policy allows posting a file ``filename`` of ``size`` bytes with
    ``fields`` to ``bucket`` at ``now`` (Unix seconds; unset: now): not expired, and each
    condition as Cloud Storage reads it (exact ``{name: value}`` or ``eq``, ``starts-with``,
    ``content-length-range``; names without regard to case) against the fields as posted, the
    key with the file's name in place of ``${filename}``: Cloud Storage puts it in before it
    checks ("Failed condition: {"key":"${filename}"}", googleapis/nodejs-storage#2083)."""
    policy = policy_of(fields)
    expiration = datetime.fromisoformat(policy["expiration"].replace("Z", "+00:00"))
    if (time.time() if now is None else now) > expiration.timestamp():
        return False
    posted = {name.lower(): value for name, value in {**fields, "bucket": bucket}.items()}
    if "key" in posted:
        posted["key"] = posted["key"].replace("${filename}", filename)
    for condition in policy["conditions"]:
        if isinstance(condition, dict):
            ((name, value),) = condition.items()
            condition = ["eq", f"${name}", value]
        op = str(condition[0]).lower()
        if op == "content-length-range":
            if not int(condition[1]) <= size <= int(condition[2]):
                return False
            continue
        given = posted.get(str(condition[1]).removeprefix("$").lower())
        if given is None:
            return False
        if not (given == condition[2] if op == "eq" else given.startswith(condition[2])):
            return False
    return True

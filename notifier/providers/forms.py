"""What every browser upload form shares, whoever signs it (boto3 for S3, google-cloud-storage
for Cloud Storage, the OSS and COS adapters themselves): the key field, the policy's conditions
for the size and the content type, and the check that a library signed what was asked.

Their policies read these conditions alike (S3's POST policy, which OSS, COS and Cloud Storage
follow): ``content-length-range``, and ``Content-Type`` exact or ``starts-with``.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from notifier.schemas import S3UploadRequest
from notifier.timestamps import rfc3339, seconds

FILENAME = "${filename}"  # the store puts the uploaded file's name here (a key under a prefix)


def form_key(request: S3UploadRequest) -> str:
    """The form's ``key`` field: the key, or the prefix and ``${filename}``."""
    return request.key if request.key is not None else (request.key_prefix or "") + FILENAME


def conditions(
    request: S3UploadRequest, type_fields: tuple[str, ...] = ("Content-Type",)
) -> tuple[dict[str, str], list[Any]]:
    """The form's own fields and the policy's conditions for the size and the content type the
    request allows, in each of ``type_fields`` (the signer adds the bucket, the key, and its
    signing fields)."""
    fields: dict[str, str] = {}
    rules: list[Any] = [["content-length-range", 1, request.max_size]]
    kind = request.content_type
    if kind is None:
        return fields, rules
    for name in type_fields:
        if kind.endswith("/*"):
            # A whole type: the page sets the file's own type in the field.
            rules.append(["starts-with", f"${name}", kind[:-1]])
        else:
            fields[name] = kind
            rules.append({name: kind})
    return fields, rules


def signed_expiration(encoded: str, rules: list[Any], *, signer: str) -> str:
    """The expiration (RFC 3339) of a policy a library signed (``encoded``: base64 of its
    JSON), once every one of ``rules`` is found among its conditions."""
    policy = json.loads(base64.b64decode(encoded))
    # What was asked must be in what was signed, or the form allows more than asked.
    lost = [rule for rule in rules if rule not in policy["conditions"]]
    if lost:
        raise RuntimeError(f"{signer} left conditions out of the policy: {lost}")
    return rfc3339(seconds(policy["expiration"]))

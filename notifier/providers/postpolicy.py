"""What the stores whose browser forms carry a POST policy (S3, Aliyun OSS) sign alike: the
size range and the content type a request allows, and the name a key under a prefix takes.

Both read a policy's conditions the same way: ``["content-length-range", min, max]`` on the
file's size, ``{"Content-Type": v}`` an exact value, ``["starts-with", "$Content-Type", v]`` a
prefix (AWS "Creating a POST Policy"; Aliyun PostObject, "Appendix: Policy").
"""

from __future__ import annotations

from typing import Any

from notifier.schemas import S3UploadRequest

# The store puts the uploaded file's name here: a key under a prefix (S3 and OSS alike).
FILENAME = "${filename}"


def conditions(request: S3UploadRequest) -> tuple[dict[str, str], list[Any]]:
    """The form's own fields and the policy's conditions for the size and the content type the
    request allows (the store's adapter adds the bucket, the key and its signing fields)."""
    fields: dict[str, str] = {}
    rules: list[Any] = [["content-length-range", 1, request.max_size]]
    kind = request.content_type
    if kind is not None and kind.endswith("/*"):
        # A whole type: the page sets the file's own type in the Content-Type field.
        rules.append(["starts-with", "$Content-Type", kind[:-1]])
    elif kind is not None:
        fields["Content-Type"] = kind
        rules.append({"Content-Type": kind})
    return fields, rules


def form_key(request: S3UploadRequest) -> str:
    """The form's ``key`` field: the key asked for, or the prefix and the file's name."""
    return request.key if request.key is not None else (request.key_prefix or "") + FILENAME

"""Kinds of setting value that more than one setting takes."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, Field, SecretStr

# What secrets.token_urlsafe() makes, long enough not to be guessed.
_URL_SAFE_TOKEN = re.compile(r"[A-Za-z0-9_-]{16,}")


def _url_safe(value: SecretStr) -> SecretStr:
    if not _URL_SAFE_TOKEN.fullmatch(value.get_secret_value()):
        raise ValueError("must be at least 16 URL-safe characters (A-Z, a-z, 0-9, - and _)")
    return value


# A secret carried in a URL (a receipt or bounce route's ?token=…).
UrlSafeToken = Annotated[SecretStr, AfterValidator(_url_safe)]


# An upload store's endpoint (OSS, COS, Cloud Storage): a scheme and a host (and port), nothing
# after; a trailing slash is taken and dropped, so `<endpoint>/<bucket>` has one slash.
StoreEndpoint = Annotated[
    str, Field(pattern=r"^https?://[^\s/]+/?$"), AfterValidator(lambda url: url.rstrip("/"))
]

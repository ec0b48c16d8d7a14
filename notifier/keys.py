"""API keys: ``ntf_`` and 43 URL-safe characters, known to Notifier only by their SHA-256."""

from __future__ import annotations

import hashlib
import secrets

KEY_PREFIX = "ntf_"


def digest(key: str) -> str:
    """The SHA-256 of a key: the only form in which a key is stored (``key_sha256``)."""
    return hashlib.sha256(key.encode()).hexdigest()


def new_key() -> tuple[str, str]:
    """A fresh API key and its digest."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, digest(key)

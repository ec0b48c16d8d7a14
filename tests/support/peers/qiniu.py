"""Check a Qiniu upload token the way Qiniu does: recompute its HMAC, decode its policy."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from qiniu import Auth


def check_token(token: str, *, access_key: str, secret_key: str) -> dict[str, Any]:
    """The token's put policy, after checking its access key and signature."""
    ak, sign, encoded = token.split(":")
    assert ak == access_key
    expected = hmac.new(secret_key.encode(), encoded.encode(), hashlib.sha1).digest()
    assert base64.urlsafe_b64decode(sign) == expected, "signature does not match the policy"
    policy: dict[str, Any] = json.loads(base64.urlsafe_b64decode(encoded))
    # The SDK's own decoding agrees.
    assert Auth.up_token_decode(token) == (access_key, expected, policy)
    return policy

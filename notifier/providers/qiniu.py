"""Qiniu upload tokens, minted with the ``qiniu`` SDK's ``Auth.upload_token``."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from qiniu import Auth


@dataclass(frozen=True)
class QiniuSettings:
    access_key: str
    secret_key: str


class QiniuTokens:
    """Mint upload tokens; pure computation (an HMAC-SHA1 of the policy), no network."""

    name = "qiniu"

    def __init__(self, settings: QiniuSettings) -> None:
        self._auth = Auth(settings.access_key, settings.secret_key)

    def upload_token(
        self, *, bucket: str, key: str | None, expires_in: int, policy: dict[str, Any]
    ) -> tuple[str, int]:
        """The token and its deadline (Unix seconds) for ``policy`` on ``bucket`` (and ``key``).

        The SDK's strict mode silently drops policy fields it does not know; a token that lost
        any field it was asked for would allow more than asked, so that is an error here.
        """
        token = self._auth.upload_token(bucket, key=key, expires=expires_in, policy=policy)
        _, _, minted = Auth.up_token_decode(token)
        dropped = sorted(set(policy) - set(minted))
        if dropped:
            raise RuntimeError(f"the qiniu SDK dropped policy fields: {', '.join(dropped)}")
        deadline = int(minted["deadline"])
        if abs(deadline - (time.time() + expires_in)) > 5:
            raise RuntimeError("the qiniu SDK set an unexpected deadline")
        return token, deadline

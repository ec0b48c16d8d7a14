"""Bearer API keys: only their SHA-256 is known; each client has scopes."""

from __future__ import annotations

import functools
import logging
import math
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import redis
from flask import g, request

from notifier.api.openapi import tag
from notifier.errors import Forbidden, ServiceUnavailable, TooManyRequests, Unauthorized
from notifier.keys import digest
from notifier.redisconn import refusal
from notifier.runtime import runtime
from notifier.settings import ApiClient, Scope
from notifier.stores.rate_limits import Rate

log = logging.getLogger(__name__)
P = ParamSpec("P")
R = TypeVar("R")
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="notifier"'}


def authenticate() -> ApiClient:
    """The client whose key the request carries; 401 alike for a missing and an unknown key."""
    scheme, _, key = request.headers.get("Authorization", "").partition(" ")
    client = None
    if scheme.lower() == "bearer" and key.strip():
        client = runtime().clients.get(digest(key.strip()))
    if client is None:
        raise Unauthorized(
            "a valid API key is required: Authorization: Bearer <key>", headers=_CHALLENGE
        )
    return client


def requires(scope: Scope | None = None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Let a view run only for a known key whose client has ``scope``; the client is ``g.client``."""

    def decorate(view: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(view)
        def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
            client = authenticate()
            if scope is not None and scope not in client.scopes:
                raise Forbidden(f"client {client.client!r} lacks the {scope!r} scope")
            g.client = client
            return view(*args, **kwargs)

        tag(guarded, authenticated=True, scope=scope, errors=(401, 403) if scope else (401,))
        return guarded

    return decorate


def rate_limited(view: Callable[P, R]) -> Callable[P, R]:
    """Let a client's request through its token bucket (after :func:`requires`), else 429."""

    @functools.wraps(view)
    def guarded(*args: P.args, **kwargs: P.kwargs) -> R:
        rt = runtime()
        client: ApiClient = g.client
        rate = Rate.parse(client.rate or rt.settings.rate_limit)
        try:
            wait = rt.limiter.take(client.client, rate)
        except redis.RedisError as e:
            if not rt.settings.rate_limit_fail_open:
                refused = refusal(e)
                why = f" ({refused})" if refused else ""
                raise ServiceUnavailable(
                    f"the rate limit cannot be checked{why}; retry later"
                ) from e
            log.warning("rate limit not checked, letting the request through: %s", e)
            wait = 0.0
        if wait > 0:
            retry_after = str(max(1, math.ceil(wait)))
            raise TooManyRequests(
                f"client {client.client!r} is over its rate of {client.rate or rt.settings.rate_limit}",
                headers={"Retry-After": retry_after},
            )
        return view(*args, **kwargs)

    tag(guarded, errors=(429, 503))
    return guarded

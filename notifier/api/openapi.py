"""The OpenAPI document, generated from the pydantic models and the route table below.

The table is the one list of what the API offers; a test checks that it names exactly the
routes the app has.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from importlib.metadata import version
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notifier.schemas import (
    Accepted,
    CaptchaAccepted,
    CaptchaRequest,
    Health,
    MailRequest,
    NotificationView,
    Problem,
    UploadToken,
    UploadTokenRequest,
    VerifyRequest,
    VerifyResult,
)

TITLES = {
    400: "The body is not a JSON object",
    401: "No key, or an unknown key",
    403: "The key's client lacks the scope, or the bucket",
    404: "Unknown id, or another client's",
    409: "Conflict: Idempotency-Key reused with another body, or past the state that allows it",
    413: "The body is over the size limit",
    422: "The body fails validation; errors names each field",
    429: "Over a rate limit; Retry-After says when to try again",
    503: "Redis or the broker is unreachable (or the feature is not configured): nothing was accepted",
}
SENDING = (400, 401, 403, 409, 413, 422, 429, 503)


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    ok: tuple[int, type[BaseModel] | str]
    body: type[BaseModel] | None = None
    scope: str | None = None
    public: bool = False
    idempotent: bool = False
    errors: tuple[int, ...] = ()
    params: tuple[dict[str, Any], ...] = field(default=())


ID = {"name": "id", "in": "path", "required": True, "schema": {"type": "string", "maxLength": 64}}
ROUTES = (
    Route("post", "/v1/mail", "Send a mail (now, or at send_at)", (202, Accepted), MailRequest,
          "mail", idempotent=True, errors=SENDING),
    Route("post", "/v1/sms/captcha", "Send an SMS captcha code", (202, CaptchaAccepted),
          CaptchaRequest, "sms", idempotent=True, errors=SENDING),
    Route("post", "/v1/sms/captcha/verify", "Check a captcha code", (200, VerifyResult),
          VerifyRequest, "sms", errors=(400, 401, 403, 413, 422, 503)),
    Route("post", "/v1/uploads/qiniu/token", "Mint a Qiniu upload token", (200, UploadToken),
          UploadTokenRequest, "upload", errors=(400, 401, 403, 413, 422, 503)),
    Route("get", "/v1/notifications/{id}", "The status of a notification", (200, NotificationView),
          errors=(401, 404, 503), params=(ID,)),
    Route("delete", "/v1/notifications/{id}", "Cancel a scheduled notification",
          (200, NotificationView), errors=(401, 404, 409, 503), params=(ID,)),
    Route("get", "/healthz", "The process is up", (200, Health), public=True),
    Route("get", "/readyz", "Redis and the broker answer", (200, Health), public=True,
          errors=(503,)),
    Route("get", "/metrics", "Prometheus metrics", (200, "text/plain"), public=True),
    Route("get", "/openapi.json", "This document", (200, "application/json"), public=True),
    Route("get", "/docs", "This document, for people", (200, "text/html"), public=True),
)  # fmt: skip


def _ref(model: type[BaseModel]) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{model.__name__}"}


def _problem(status: int) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": TITLES[status],
        "content": {"application/problem+json": {"schema": _ref(Problem)}},
    }
    if status == 429:
        answer["headers"] = {
            "Retry-After": {"description": "seconds", "schema": {"type": "integer"}}
        }
    return answer


def _operation(route: Route) -> dict[str, Any]:
    status, shape = route.ok
    if isinstance(shape, str):
        ok: dict[str, Any] = {"description": "OK", "content": {shape: {"schema": {}}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": _ref(shape)}}}
    operation: dict[str, Any] = {
        "summary": route.summary,
        "operationId": f"{route.method}_{route.path.strip('/').replace('/', '_').replace('{', '').replace('}', '')}",
        "responses": {str(status): ok} | {str(e): _problem(e) for e in route.errors},
    }
    if route.scope:
        operation["description"] = f"Needs a key whose client has the `{route.scope}` scope."
    if route.public:
        operation["security"] = []
    params = list(route.params)
    if route.idempotent:
        params.append(
            {
                "name": "Idempotency-Key",
                "in": "header",
                "required": False,
                "description": "The same key and body within 24 h answer the first answer again.",
                "schema": {
                    "type": "string",
                    "minLength": 1,
                    "maxLength": 255,
                    "pattern": "^[ -~]+$",
                },
            }
        )
    if params:
        operation["parameters"] = params
    if route.body is not None:
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(route.body)}},
        }
    return operation


@cache
def document() -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API."""
    models = (
        {r.body for r in ROUTES if r.body}
        | {shape for r in ROUTES if isinstance(shape := r.ok[1], type)}
        | {Problem}
    )
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        paths.setdefault(route.path, {})[route.method] = _operation(route)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Notifier",
            "version": version("notifier"),
            "description": "Mail, SMS captchas and Qiniu upload tokens for other services.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }

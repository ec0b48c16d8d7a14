"""The OpenAPI document, generated from the app itself.

Each fact about a route is declared once, where it is enforced: :func:`operation` on a view names
its answer and body (the pydantic models it parses and returns); :func:`tag` lets the decorators
that guard views (``requires``, ``rate_limited``, ``idempotent``) add their scope, header and
errors. The paths come from the app's URL map: a view without :func:`operation` (an asset) is
not part of the API.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import lru_cache
from importlib.metadata import version
from typing import Any, TypeVar

from flask import Flask
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from notifier.schemas import A_BREAK, Problem, given
from notifier.templating import MailTemplates, NamedSms

V = TypeVar("V", bound=Callable[..., Any])
TITLES = {
    400: "The body is not a JSON object (a receipt push: not an array of objects)",
    401: "No key, or an unknown key",
    403: "The key's client lacks the scope, or the bucket",
    404: "Unknown id, or another client's",
    409: "Conflict: Idempotency-Key reused with another body, or past the state that allows it",
    413: "The body is over the size limit",
    422: "The body fails validation; errors names each field",
    429: "Over a rate limit; Retry-After says when to try again",
    503: (
        "Redis or the broker is unreachable (or the feature is not configured; for a bounce, its"
        " send is not recorded yet): nothing was accepted"
    ),
}
# What a body read by notifier.api.body.parse can be refused with.
BODY_ERRORS = (400, 413, 422)
# The longest id a path takes; a longer one is unknown (404) without asking Redis.
MAX_PATH_ID = 64
IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "The same key and body within 24 h answer the first answer again.",
    "schema": {"type": "string", "minLength": 1, "maxLength": 255, "pattern": "^[ -~]+$"},
}


@dataclass(frozen=True)
class Variant:
    """What one value of a path parameter makes of a route: its own body and answer (each upload
    store's ``/v1/uploads/<store>/token``), under a title added to the summary."""

    title: str
    body: type[BaseModel]
    ok: type[BaseModel]


# A path parameter whose every value the document lists as a path of its own, and what lists
# those values for an app: ("store", stores).
Each = tuple[str, Callable[[Flask], dict[str, Variant]]]


def tag(view: Callable[..., Any], *, errors: tuple[int, ...] = (), **facts: Any) -> None:
    """Add facts (and error statuses) to ``view``'s entry in the document.

    Kept in the view's ``__dict__``, which ``functools.wraps`` carries out to every wrapper.
    """
    described: dict[str, Any] = view.__dict__.setdefault("openapi", {"errors": set()})
    described["errors"] = described["errors"] | set(errors)
    described.update(facts)


def operation(
    ok: tuple[int, type[BaseModel] | str],
    *,
    body: type[BaseModel] | None = None,
    body_errors: tuple[int, ...] = BODY_ERRORS,
    errors: tuple[int, ...] = (),
    query: tuple[dict[str, Any], ...] = (),
    pages: tuple[int, ...] = (),
    each: Each | None = None,
) -> Callable[[V], V]:
    """Declare a view part of the API: its answer (a model, or a media type), body (and what it
    can be refused with), errors and query parameters (OpenAPI parameter objects, less
    ``"in"``). ``pages`` are the errors that answer an HTML page (for a person), not
    problem+json. With ``each``, the document lists the route once for each value of that path
    parameter, with the value's own body and answer (:class:`Variant`)."""

    def decorate(view: V) -> V:
        tag(view, ok=ok, body=body, errors=errors + (body_errors if body else ()), query=query,
            pages=pages, each=each)  # fmt: skip
        return view

    return decorate


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


def _operation(
    method: str, path: str, view: Callable[..., Any], facts: dict[str, Any]
) -> dict[str, Any]:
    status, shape = facts["ok"]
    if isinstance(shape, str):
        ok: dict[str, Any] = {"description": "OK", "content": {shape: {"schema": {}}}}
    else:
        ok = {"description": "OK", "content": {"application/json": {"schema": _ref(shape)}}}
    # Word characters only: Swagger UI makes element ids of these.
    name = re.sub(r"\W", "_", re.sub(r"[{}]", "", path.strip("/")))
    result: dict[str, Any] = {
        "summary": facts.get("summary") or (view.__doc__ or "").strip().splitlines()[0].rstrip("."),
        "operationId": f"{method}_{name}",
        "responses": {str(status): ok}
        | {
            str(e): {"description": TITLES[e], "content": {"text/html": {"schema": {}}}}
            if e in facts.get("pages", ())
            else _problem(e)
            for e in sorted(facts["errors"])
        },
    }
    if facts.get("scope"):
        result["description"] = f"Needs a key whose client has the `{facts['scope']}` scope."
    if not facts.get("authenticated"):
        result["security"] = []
    params = [
        {
            "name": n,
            "in": "path",
            "required": True,
            "schema": {"type": "string", "maxLength": MAX_PATH_ID},
        }
        for n in re.findall(r"{(\w+)}", path)
    ]
    params += [{**q, "in": "query", "required": False} for q in facts.get("query", ())]
    if facts.get("idempotent"):
        params.append(IDEMPOTENCY_KEY)
    if params:
        result["parameters"] = params
    if facts["body"] is not None:
        result["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": _ref(facts["body"])}},
        }
    return result


def routes(app: Flask) -> list[tuple[str, str, Callable[..., Any]]]:
    """(method, OpenAPI path, view) of every route of the API, in the order they were added."""
    found = []
    for rule in app.url_map.iter_rules():
        view = app.view_functions[rule.endpoint]
        if "openapi" not in view.__dict__:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule)
        for method in sorted((rule.methods or set()) - {"HEAD", "OPTIONS"}):
            found.append((method.lower(), path, view))
    return found


def _each_path(app: Flask) -> list[tuple[str, str, Callable[..., Any], dict[str, Any]]]:
    """(method, OpenAPI path, view, its facts) of every route, a route with ``each`` once for
    each value of its parameter (``/v1/uploads/qiniu/token``, ``/v1/uploads/s3/token``, …)."""
    found = []
    for method, path, view in routes(app):
        facts: dict[str, Any] = view.__dict__["openapi"]
        if facts.get("each") is None:
            found.append((method, path, view, facts))
            continue
        parameter, values = facts["each"]
        summary = (view.__doc__ or "").strip().splitlines()[0].rstrip(".")
        for value, variant in values(app).items():
            own = {**facts, "body": variant.body, "ok": (facts["ok"][0], variant.ok),
                   "summary": f"{summary} ({variant.title})"}  # fmt: skip
            found.append((method, path.replace(f"{{{parameter}}}", value), view, own))
    return found


def _data_of(model: str, data: dict[str, Any]) -> dict[str, Any]:
    """``data``'s schema where ``model`` keeps a message's data: its own, or each row's of a
    batch."""
    own = {"required": ["data"], "properties": {"data": data}}
    batch = model in ("BatchRequest", "SmsBatchRequest")
    return {"properties": {"recipients": {"items": own}}} if batch else own


def _named_sms(schemas: dict[str, Any], templates: NamedSms) -> None:
    """State the named SMS there are in the requests that name one, and the variables each
    reads (its text's and every provider's parameters')."""
    for model in ("SmsRequest", "SmsBatchRequest"):
        schema = schemas[model]
        template = schema["properties"]["template"]
        named = template["anyOf"][0] if "anyOf" in template else template
        named["enum"] = [n for n in templates.names() if re.fullmatch(named["pattern"], n)]
        rules = schema.setdefault("allOf", [])
        for name in named["enum"]:
            chosen = {"required": ["template"], "properties": {"template": {"const": name}}}
            then = _data_of(model, {"required": sorted(templates.needs(name))})
            rules.append({"if": chosen, "then": then})


def _named_mails(schemas: dict[str, Any], templates: MailTemplates) -> None:
    """State the named mails there are in the requests that name one, and for each what its
    data must hold: every variable it reads, none of its subject's a string with a line break
    (the subject must stay one header line), and a subject in the request if it has none."""
    for model in ("MailRequest", "BatchRequest"):
        schema = schemas[model]
        named = schema["properties"]["template"]["anyOf"][0]
        named["enum"] = [n for n in templates.names() if re.fullmatch(named["pattern"], n)]
        for name in named["enum"]:
            needs = templates.needs(name)
            one_line = {"not": {"type": "string", "pattern": A_BREAK}}
            then = _data_of(
                model,
                {
                    "required": sorted(needs.variables),
                    "properties": {v: one_line for v in sorted(needs.subject or ())},
                },
            )
            if needs.subject is None:
                then = {"allOf": [then, given("subject")]}
            chosen = {"required": ["template"], "properties": {"template": {"const": name}}}
            schema["allOf"].append({"if": chosen, "then": then})


def document(app: Flask) -> dict[str, Any]:
    """The OpenAPI 3.1 document of ``app``'s API, made again each day (``send_at``'s latest
    date moves with the calendar)."""
    return _document(app, datetime.now(UTC).date())


@lru_cache(maxsize=4)
def _document(app: Flask, day: date) -> dict[str, Any]:
    """The document as of ``day``, which only keys the cache (the bound is read off the clock)."""
    # The /v1 routes first: they are what a reader came for.
    listed = sorted(_each_path(app), key=lambda route: not route[1].startswith("/v1/"))
    inputs = {f["body"] for _, _, _, f in listed if f["body"]}
    outputs = {s for _, _, _, f in listed if isinstance(s := f["ok"][1], type)}
    _, schemas = models_json_schema(
        [(m, "validation") for m in sorted(inputs, key=lambda m: m.__name__)]
        + [(m, "serialization") for m in sorted(outputs | {Problem}, key=lambda m: m.__name__)],
        ref_template="#/components/schemas/{model}",
    )
    _named_mails(schemas["$defs"], app.extensions["notifier"].templates)
    _named_sms(schemas["$defs"], app.extensions["notifier"].named_sms)
    paths: dict[str, dict[str, Any]] = {}
    for method, path, view, facts in listed:
        paths.setdefault(path, {})[method] = _operation(method, path, view, facts)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Notifier",
            "version": version("notifier"),
            "description": "Mail, SMS, login codes and upload tokens for other services.",
        },
        "paths": paths,
        "components": {
            "schemas": schemas["$defs"],
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
        "security": [{"bearer": []}],
    }

"""Read a JSON request body strictly and validate it against a pydantic model."""

from __future__ import annotations

import json
import math
from typing import Any, NoReturn, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from werkzeug.exceptions import RequestEntityTooLarge

from notifier.errors import BadRequest, FieldError, Forbidden, Unprocessable

M = TypeVar("M", bound=BaseModel)
# Python's own bound on turning digits into an int; past it, int() refuses (CVE-2020-10735).
MAX_DIGITS = 4300


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    found = dict(pairs)
    if len(found) != len(pairs):
        # The first repeated, in linear time (counting each key's repeats took seconds of CPU
        # for an object of 30,000 keys).
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise BadRequest(f"the JSON body repeats the key {key!r}")
            seen.add(key)
    return found


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise BadRequest(f"the body has an integer of more than {MAX_DIGITS} digits")
    return int(text)


def _finite(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        raise BadRequest(f"the body has a number too large for a double: {text[:32]}")
    return number


def _not_json(constant: str) -> NoReturn:
    raise BadRequest(f"the body is not strict JSON: {constant} is not a JSON value")


def strict_json(raw: bytes) -> Any:
    """Strict JSON: no repeated keys, no NaN or Infinity, numbers a double or an int can hold."""
    return json.loads(
        raw.decode("utf-8"),
        object_pairs_hook=_no_duplicates,
        parse_int=_integer,
        parse_float=_finite,
        parse_constant=_not_json,
    )


def whole_body() -> bytes:
    """The body; 413 past MAX_CONTENT_LENGTH, chunked or not."""
    raw = request.get_data()  # raises 413 when the Content-Length says too much
    limit = request.max_content_length
    # Werkzeug stops reading a chunked body at the limit instead: whether more was sent, only
    # the server's own stream can tell.
    if request.content_length is None and len(raw) == limit and request.input_stream.read(1):
        raise RequestEntityTooLarge()
    return raw


def signed(proof: str) -> bytes:
    """The body of a post whose ``proof`` (its signature) is over the body itself: 403 when it
    is past the limit, since that proof cannot be checked, and a caller not shown to be the
    provider learns no more than that."""
    try:
        return whole_body()
    except RequestEntityTooLarge:
        raise Forbidden(f"{proof} cannot be checked: the body is too large") from None


def _document(raw: bytes) -> Any:
    """``raw`` read as strict JSON; 400 saying why it is not (a body sent in a content coding,
    gzip say, is not: the service decodes none, and would otherwise read the coded bytes)."""
    coding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if coding not in ("", "identity"):
        raise BadRequest(
            f"the body is not JSON: Content-Encoding {coding} is not taken; send it as is"
        )
    try:
        return strict_json(raw)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except RecursionError:
        raise BadRequest("the body is nested too deeply") from None
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"the body is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None


def objects() -> list[dict[str, Any]]:
    """The body as a JSON array of objects (a provider's batch): 400 otherwise, 413 if too large."""
    document = _document(whole_body())
    if not isinstance(document, list):
        raise BadRequest("the body must be a JSON array")
    for index, item in enumerate(document):
        if not isinstance(item, dict):
            raise BadRequest(f"the body's item {index} is not a JSON object")
    return document


def parse(model: type[M]) -> M:
    """The body as ``model``: 400 unless a JSON object, 413 if too large, 422 naming each field."""
    raw = whole_body()
    document = _document(raw)
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        # Strict JSON validation: "5" is not 5, and a date must be an RFC 3339 string.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as e:
        found = e.errors(include_url=False)
        # pydantic's own parser goes less deep than json's (about 200 levels): not JSON we read.
        if found[0]["type"] == "json_invalid":
            raise BadRequest(f"the body is not JSON we read: {found[0]['msg']}") from None
        errors = [
            FieldError(("body", *e_["loc"]), e_["msg"].removeprefix("Value error, "))
            for e_ in found
        ]
        raise Unprocessable("the body is not valid", errors=errors) from None

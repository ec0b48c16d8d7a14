"""Read a JSON request body strictly and validate it against a pydantic model."""

from __future__ import annotations

import json
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError

from notifier.errors import BadRequest, FieldError, Unprocessable

M = TypeVar("M", bound=BaseModel)


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    if len(set(keys)) != len(keys):
        duplicate = next(key for key in keys if keys.count(key) > 1)
        raise BadRequest(f"the JSON body repeats the key {duplicate!r}")
    return dict(pairs)


def parse(model: type[M]) -> M:
    """The body as ``model``: 400 unless a JSON object, 413 if too large, 422 naming each field."""
    raw = request.get_data()  # raises 413 past MAX_CONTENT_LENGTH
    try:
        document = json.loads(raw.decode("utf-8"), object_pairs_hook=_no_duplicates)
    except UnicodeDecodeError:
        raise BadRequest("the body is not UTF-8") from None
    except json.JSONDecodeError as e:
        raise BadRequest(
            f"the body is not JSON: {e.msg} at line {e.lineno} column {e.colno}"
        ) from None
    if not isinstance(document, dict):
        raise BadRequest("the body must be a JSON object")
    try:
        # Strict JSON validation: "5" is not 5, and a date must be an RFC 3339 string.
        return model.model_validate_json(raw, strict=True)
    except ValidationError as e:
        errors = [
            FieldError(("body", *e_["loc"]), e_["msg"].removeprefix("Value error, "))
            for e_ in e.errors(include_url=False)
        ]
        raise Unprocessable("the body is not valid", errors=errors) from None

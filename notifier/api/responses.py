"""Answers more than one route gives."""

from __future__ import annotations

from flask import Response, jsonify

from notifier.schemas import Accepted, Notification


def accepted(record: Notification, answer: type[Accepted] = Accepted, **extra: int) -> Response:
    """The 202 answer to a send, with the status route in ``links`` and ``Location``."""
    link = f"/v1/notifications/{record.id}"
    body = answer.model_validate(
        {"id": record.id, "status": record.status, "links": {"self": link}, **extra}
    )
    response = jsonify(body.model_dump())
    response.status_code = 202
    response.headers["Location"] = link
    return response

"""kombu's Redis envelope around a message Celery built, written as kombu's transport writes it."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any


def redis_envelope(
    body: Any,
    headers: dict[str, Any],
    properties: dict[str, Any],
    queue: str,
    expires: float | None,
) -> str:
    """The JSON kombu's Redis transport would push to ``queue`` for Celery's message parts."""
    message: dict[str, Any] = {
        "body": base64.b64encode(json.dumps(body).encode()).decode(),
        "content-encoding": "utf-8",
        "content-type": "application/json",
        "headers": headers,
        "properties": {
            **properties,
            "delivery_mode": 2,
            "delivery_info": {"exchange": "", "routing_key": queue},
            "priority": 0,
            "body_encoding": "base64",
            "delivery_tag": str(uuid.uuid4()),
        },
    }
    if expires is not None:
        # As kombu sets it: the time to live in milliseconds, as a string.
        message["properties"]["expiration"] = str(int(max(0.0, expires - time.time()) * 1000))
    return json.dumps(message)

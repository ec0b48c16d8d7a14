"""kombu's Redis envelope around a message Celery built, written as kombu's transport writes it.

Why: ``notifier.queueing`` pushes a task's message in the Redis transaction that stores its
record (nothing is stored without its message, nor queued without its record), which a publish
through kombu cannot join.

- Touches: nothing overridden; it writes what ``kombu.transport.virtual.base.Channel.prepare_message``
  and ``Channel.basic_publish`` build and ``kombu.transport.redis.Channel._put`` pushes (the
  body in base64, priority 0 and so the list named like the queue, a delivery tag, the
  expiration in milliseconds), around the parts Celery's ``AMQP.as_task_v2`` returns.
- Checked with: kombu 5.7.0, celery 5.7.0.
- Upstream: no issue found for publishing inside a caller's Redis transaction: to be filed.
  Nearest: https://github.com/celery/kombu/pull/2572 (``Producer.batch``, in 5.7.0: a pipeline
  of kombu's own client, which cannot join the record's transaction).
- Canary: ``tests/unit/test_queueing.py::test_direct_message_matches_celerys`` (the message
  pushed against the one Celery publishes, on a real Redis), and the source of the kombu
  symbols as checked in ``tests/unit/test_patches.py``.
"""

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

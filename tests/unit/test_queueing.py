"""The message pushed with a record is the message Celery itself would have published."""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from flask import Flask

from notifier.queueing import TaskQueue
from notifier.runtime import Runtime

VARYING = {"id", "root_id", "origin"}  # differ between any two messages
VARYING_PROPERTIES = {"correlation_id", "reply_to", "delivery_tag", "expiration"}


def queued(rt: Runtime) -> list[dict[str, Any]]:
    raw = rt.redis.lrange("captcha", 0, -1)
    rt.redis.delete("captcha")
    return [json.loads(m) for m in raw]


def comparable(message: dict[str, Any]) -> dict[str, Any]:
    body = json.loads(base64.b64decode(message["body"]))
    headers = {k: v for k, v in message["headers"].items() if k not in VARYING}
    properties = {k: v for k, v in message["properties"].items() if k not in VARYING_PROPERTIES}
    rest = {k: v for k, v in message.items() if k not in ("body", "headers", "properties")}
    return {"body": body, "headers": headers, "properties": properties, **rest}


def test_direct_message_matches_celerys(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    queue = TaskQueue(rt.celery, "send_sms_captcha", direct_ok=True)
    expires = time.time() + 300
    rt.redis.lpush(*queue.direct("n-1", expires=expires) or ("x", "y"))
    queue.publish("n-1", expires=expires)
    celerys, ours = queued(rt)  # LPUSH: the newest first
    assert comparable(ours) == comparable(celerys)
    assert ours["headers"]["id"] == ours["properties"]["correlation_id"]
    assert ours["headers"]["expires"] is not None
    assert (
        abs(int(ours["properties"]["expiration"]) - int(celerys["properties"]["expiration"])) < 1000
    )


def test_each_task_goes_to_its_lane_as_celery_routes_it(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    for task, lane in [("send_mail", "mail"), ("send_sms_captcha", "captcha")]:
        pushed = TaskQueue(rt.celery, task, direct_ok=True).direct("n-1")
        assert pushed is not None and pushed[0] == lane
        assert json.loads(pushed[1])["properties"]["delivery_info"]["routing_key"] == lane


def test_other_brokers_publish_after(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    assert TaskQueue(rt.celery, "send_mail", direct_ok=False).direct("n-1") is None

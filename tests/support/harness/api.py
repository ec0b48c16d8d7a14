"""Helpers of the tests that call the API through Flask's test client."""

from __future__ import annotations

import json
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from notifier.lanes import LANES
from notifier.runtime import Runtime
from notifier.stores.notifications import NotificationStore
from tests.support.harness.clients import auth

MAIL = {"to": ["ada@example.com"], "subject": "Your receipt", "text": "Thanks."}


def post(client: FlaskClient, body: Any, who: str = "tester", **kw: Any) -> Any:
    """POST ``body`` to /v1/mail as the test client ``who``."""
    return client.post("/v1/mail", json=body, headers=auth(who), **kw)


def queued_messages(app: Flask, *lanes: str) -> list[dict[str, Any]]:
    """The Celery messages waiting in ``lanes`` (every lane when none is named)."""
    rt: Runtime = app.extensions["notifier"]
    return [json.loads(m) for lane in lanes or LANES for m in rt.redis.lrange(lane, 0, -1)]


def assert_problem(response: Any, status: int) -> dict[str, Any]:
    """Check ``response`` is a problem+json of ``status``; return its body."""
    assert response.status_code == status, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    body: dict[str, Any] = response.get_json(force=True)
    assert body["status"] == status
    assert set(body) == {"type", "title", "status", "detail", "errors"}
    return body


def sent_sms(store: NotificationStore, notification_id: str, provider: str, ref: str) -> None:
    """Record a captcha as sent by ``provider`` under its message id ``ref``."""
    store.create(notification_id=notification_id, client="c", kind="sms_captcha", payload={})
    store.claim(notification_id, lease=30, max_attempts=5)
    store.settle(notification_id, "sent", provider=provider, provider_ref=ref)


def error_locs(body: dict[str, Any]) -> list[list[Any]]:
    """The ``loc`` of each error in a problem body."""
    return [e["loc"] for e in body["errors"]]


# An upload-token request with every field set.
FULL = {
    "bucket": "avatars",
    "key": "u/42.png",
    "expires_in": 3600,
    "insert_only": True,
    "fsize_limit": 5242880,
    "mime_limit": "image/*",
    "callback_url": "https://app.example/qiniu/callback",
    "callback_body": "key=$(key)&hash=$(etag)",
    "return_body": '{"key": "$(key)"}',
}

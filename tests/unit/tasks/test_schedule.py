"""dispatch_due, called as beat's message would call it, without a worker: due mails are queued."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable

from flask import Flask

from config import ApiClient, Settings
from notifier import create_app
from notifier.lanes import QueueNames, TaskNames
from notifier.runtime import Runtime
from notifier.stores.notifications import dispatched_at_keys
from notifier.stores.notifications.base import OWED
from notifier.tasks.schedule import dispatch_due
from tests.support.harness.clients import api_clients


def test_due_mails_go_on_the_mail_lane_and_later_ones_wait(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    due = rt.store.create(
        notification_id="due", client="tester", kind="mail", payload={}, send_at=time.time() - 1
    )
    rt.store.create(
        notification_id="later", client="tester", kind="mail", payload={}, send_at=time.time() + 60
    )
    assert due.status == "scheduled"

    assert dispatch_due() == 1

    (raw,) = rt.redis.lrange(QueueNames.MAIL, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == TaskNames.SEND_MAIL
    assert json.loads(base64.b64decode(message["body"]))[0] == ["due"]  # the id, nothing else
    assert rt.store.get("due").status == "queued"  # type: ignore[union-attr]
    assert rt.store.get("later").status == "scheduled"  # type: ignore[union-attr]
    assert dispatch_due() == 0  # dispatched once: off the schedule


def test_a_dispatch_stamps_its_run_even_when_nothing_is_due(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    before = time.time()
    assert dispatch_due() == 0
    stamps = [float(rt.redis.get(key) or 0) for key in dispatched_at_keys()]
    assert min(stamps) >= before


def test_the_sweep_publishes_owed_callbacks_with_their_first_webhook_id(
    make_settings: Callable[..., Settings],
) -> None:
    hooked = ApiClient.model_validate(
        {"client": "hooked", "key_sha256": "0" * 64, "scopes": ["mail"],
         "callback_url": "http://127.0.0.1:9/hook", "callback_secret": "whsec_" + "A" * 32}
    )  # fmt: skip
    app = create_app(make_settings(api_keys=[*api_clients(), hooked]))
    rt: Runtime = app.extensions["notifier"]
    # As a receipt leaves it when another broker refused its callback's publish.
    owed = ["n-1", "delivered", "msg_first", 1_800_000_000]
    rt.redis.zadd(OWED, {json.dumps(owed): time.time() - 1})
    with app.app_context():
        dispatch_due()
    (raw,) = rt.redis.lrange(QueueNames.CALLBACKS, 0, -1)
    message = json.loads(raw)
    assert message["headers"]["task"] == TaskNames.SEND_CALLBACK
    assert json.loads(base64.b64decode(message["body"]))[0] == owed
    assert rt.redis.zcard(OWED) == 0

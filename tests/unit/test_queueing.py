"""The message pushed with a record is the message Celery itself would have published."""

from __future__ import annotations

import base64
import contextlib
import json
import time
from typing import Any

import pytest
import redis
from flask import Flask

from notifier.queueing import Intake, TaskQueue
from notifier.runtime import Runtime
from notifier.schemas import Notification
from notifier.services.delivery import store_and_queue
from notifier.stores.notifications import NotificationStore

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
    assert comparable(ours) == comparable(celerys), (
        "the direct push's message is not the one Celery publishes: re-check "
        "notifier/patches/kombu_envelope.py against the installed kombu and Celery"
    )
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


class _Queue:
    """An Enqueuer stand-in: pushed with the state (``direct``) or published after, which may
    fail."""

    def __init__(self, direct: bool, fails: bool = False) -> None:
        self.is_direct, self.fails = direct, fails
        self.events: list[str] = []

    def direct(self, notification_id: str, *rest: str | int, expires: float | None = None) -> Any:
        return ("lane", "message") if self.is_direct else None

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        if self.fails:
            raise ConnectionError("the broker refused it")
        self.events.append("published")


@pytest.mark.parametrize(
    ("direct", "now", "fails", "seen"),
    [
        (True, True, False, ["told queued", "stored"]),  # one transaction: told first
        (False, True, False, ["stored", "published", "told queued"]),  # told once published
        (False, True, True, ["stored", "discarded"]),  # never told: the record was taken back
        (False, False, False, ["told scheduled", "stored"]),  # scheduled: nothing to publish
    ],
)
def test_a_request_is_told_its_id_once_its_record_means_accepted(
    direct: bool, now: bool, fails: bool, seen: list[str]
) -> None:
    queue = _Queue(direct, fails)
    intake = Intake(queue, lambda found, status: queue.events.append(f"told {status}"))
    with contextlib.suppress(ConnectionError):
        intake.take("n-1", _Record(queue.events), now=now)
    assert queue.events == seen


class _Record:
    """A Record stand-in that tells when it is stored and taken back."""

    def __init__(self, events: list[str]) -> None:
        self.events = events

    def write(self, push: tuple[str, str] | None) -> None:
        self.events.append("stored")

    def take_back(self) -> bool:
        self.events.append("discarded")
        return True

    def stored(self) -> None:
        """Nothing is kept here: a failure stands."""


class _LateConfirm:
    """Another broker that took the message and ran its task (a worker claimed and sent it)
    while its confirm never came: the publish fails all the same."""

    def __init__(self, store: NotificationStore, runs: bool) -> None:
        self.store, self.runs = store, runs

    def direct(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        return None

    def publish(self, notification_id: str, *rest: str | int, expires: float | None = None) -> None:
        if self.runs:
            self.store.claim(notification_id, lease=30, max_attempts=3)
            self.store.settle(notification_id, "sent", provider="smtp", provider_ref="<m@x>")
        raise TimeoutError("no confirm within a second")


@pytest.mark.parametrize("runs", [True, False])
def test_a_publish_that_failed_after_its_task_ran_is_accepted_not_taken_back(
    app: Flask, runs: bool
) -> None:
    rt: Runtime = app.extensions["notifier"]
    told: list[str] = []
    queue = _LateConfirm(rt.store, runs)

    def take() -> Notification:
        return store_and_queue(
            rt.store, queue, client="tester", kind="mail", payload={},
            note=lambda found, status: told.append(status),
        )  # fmt: skip

    if runs:
        # Taken back, its send would be recorded nowhere and the 503's retry send it again.
        record = take()
        assert rt.store.get(record.id).status == "sent"  # type: ignore[union-attr]
        assert told == ["queued"]
    else:
        with pytest.raises(TimeoutError):
            take()
        assert told == []


class _Stays(_Record):
    """A record whose take-back fails: Redis went away between the publish and it."""

    def take_back(self) -> bool:
        raise redis.ConnectionError("Redis went away")

    def stored(self) -> None:
        raise redis.ConnectionError("Redis went away")  # cannot tell: it was written


def test_a_record_neither_published_nor_taken_back_is_accepted_for_the_sweep() -> None:
    # It stays, queued, and the sweep publishes it 30 s on: a 503 would have the client's retry
    # send it a second time.
    queue = _Queue(direct=False, fails=True)
    intake = Intake(queue, lambda found, status: queue.events.append(f"told {status}"))
    intake.take("n-1", _Stays(queue.events), now=True)
    assert queue.events == ["stored", "told queued"]


class _GoneAnyway(_Record):
    """A record whose take-back was made, its answer lost: it is gone."""

    def take_back(self) -> bool:
        raise redis.ConnectionError("the answer was lost")

    def stored(self) -> None:
        return None


def test_a_record_taken_back_though_its_answer_was_lost_is_the_503_it_is() -> None:
    queue = _Queue(direct=False, fails=True)
    intake = Intake(queue, lambda found, status: queue.events.append(f"told {status}"))
    with pytest.raises(ConnectionError, match="the broker refused it"):
        intake.take("n-1", _GoneAnyway(queue.events), now=True)
    assert queue.events == ["stored"]  # never told: nothing was accepted

"""Idempotency-Key on the sending routes (Flask app, real Redis, no worker)."""

from __future__ import annotations

import time
from typing import Any

import pytest
import redis
from flask import Flask
from flask.testing import FlaskClient

from notifier import queueing
from notifier.api import idempotency
from notifier.stores.batches import BatchStore
from notifier.stores.idempotency import PENDING, IdempotencyKeys
from notifier.stores.notifications import NotificationStore
from tests.support.harness.api import MAIL, assert_problem, error_locs, queued_messages
from tests.support.harness.clients import auth


def post(
    client: FlaskClient, body: Any, key: str, who: str = "tester", path: str = "/v1/mail"
) -> Any:
    return client.post(path, json=body, headers={**auth(who), "Idempotency-Key": key})


def test_same_key_and_body_replay_the_first_answer(app: Flask, client: FlaskClient) -> None:
    first = post(client, MAIL, "order-42")
    assert first.status_code == 202
    assert "Idempotent-Replayed" not in first.headers
    # The same JSON with other spacing and key order is the same body.
    again = client.post(
        "/v1/mail",
        data='{"text": "Thanks.",   "subject": "Your receipt", "to": ["ada@example.com"]}',
        headers={**auth(), "Idempotency-Key": "order-42", "Content-Type": "application/json"},
    )
    assert again.status_code == 202
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(queued_messages(app)) == 1


def test_same_key_with_another_body_is_409(client: FlaskClient) -> None:
    post(client, MAIL, "order-43")
    reused = post(client, {**MAIL, "subject": "Other"}, "order-43")
    assert "Idempotency-Key" in assert_problem(reused, 409)["detail"]
    assert "Retry-After" not in reused.headers  # asking again cannot help
    assert_problem(
        post(
            client, {"phone": "+8613800138000", "purpose": "x"}, "order-43", path="/v1/sms/captcha"
        ),
        409,
    )


def test_a_body_with_a_repeated_key_is_no_replay(app: Flask, client: FlaskClient) -> None:
    assert post(client, MAIL, "order-44").status_code == 202
    # Read leniently, its last "text" makes it the first body; read as the route reads it,
    # it is no body at all.
    repeated = (
        '{"text": "zzz", "subject": "Your receipt", "to": ["ada@example.com"], "text": "Thanks."}'
    )
    again = client.post(
        "/v1/mail", data=repeated,
        headers={**auth(), "Idempotency-Key": "order-44", "Content-Type": "application/json"},
    )  # fmt: skip
    assert "Idempotent-Replayed" not in again.headers and again.status_code in (400, 409)
    assert len(queued_messages(app)) == 1


def test_keys_belong_to_their_client(app: Flask, client: FlaskClient) -> None:
    mine = post(client, MAIL, "shared").get_json()
    theirs = post(client, MAIL, "shared", who="mailer").get_json()
    assert mine["id"] != theirs["id"]
    assert len(queued_messages(app)) == 2


def test_a_refused_request_does_not_hold_the_key(app: Flask, client: FlaskClient) -> None:
    assert_problem(post(client, {**MAIL, "to": []}, "retry-me"), 422)
    assert post(client, {**MAIL, "to": []}, "retry-me").status_code == 422
    assert post(client, MAIL, "retry-me").status_code == 202


def test_captcha_send_replays_without_hitting_the_resend_limit(client: FlaskClient) -> None:
    body = {"phone": "+8613800138000", "purpose": "login"}
    first = post(client, body, "login-1", path="/v1/sms/captcha")
    again = post(client, body, "login-1", path="/v1/sms/captcha")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.get_json()["resend_after"] == 60


@pytest.mark.parametrize("key", ["", "x" * 256, "naïve", "tab\there"])
def test_invalid_key_is_422_naming_the_header(client: FlaskClient, key: str) -> None:
    response = client.post(
        "/v1/mail", json=MAIL, headers={**auth(), "Idempotency-Key": key.encode().decode("latin-1")}
    )
    body = assert_problem(response, 422)
    assert error_locs(body) == [["header", "Idempotency-Key"]]


# Every sending route, with a body it accepts: what a request with a key stores, a retry with
# the key must find.
SENDS = {
    "/v1/mail": MAIL,
    "/v1/sms/captcha": {"phone": "+8613800138001", "purpose": "login"},
    "/v1/mail/captcha": {"to": "grace@example.com", "purpose": "login"},
    "/v1/mail/batch": {
        "subject": "News",
        "text": "Hello {{ name }}",
        "recipients": [{"to": "ada@example.com", "data": {"name": "Ada"}}],
    },
}


@pytest.mark.parametrize("path", list(SENDS))
def test_a_retry_after_the_first_died_before_its_answer_is_answered_from_the_record(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """The first request stored and queued its send, then its process died before the answer
    was kept (as a SIGKILLed web would): the retry answers with what it stored, and nothing
    is queued again, rather than after the slot's 30 s (when it sent a second time)."""
    monkeypatch.setattr(idempotency, "WAIT", 0.3)
    with monkeypatch.context() as dying:
        dying.setattr(IdempotencyKeys, "keep", lambda *_: None)  # the process died here
        first = post(client, SENDS[path], f"died-{path}", path=path)
    assert first.status_code == 202, first.get_json()
    again = post(client, SENDS[path], f"died-{path}", path=path)
    assert again.status_code == 202, again.get_json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert again.headers["Location"] == first.headers["Location"]
    assert len(queued_messages(app)) == 1
    # The answer is kept now, as a live first request's would be.
    assert post(client, SENDS[path], f"died-{path}", path=path).get_json() == first.get_json()


@pytest.mark.parametrize("path", list(SENDS))
def test_a_write_that_timed_out_here_and_was_made_in_redis_is_accepted_once(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch, path: str
) -> None:
    """A stalled Redis runs the store after the web gave up on its answer: the request is the
    202 it was (not a 503 with its key freed, whose retry sent it a second time), and a retry
    with the key replays it."""
    store = BatchStore if path == "/v1/mail/batch" else NotificationStore
    create = store.create

    def stalled(*args: Any, **kw: Any) -> Any:
        create(*args, **kw)  # made in Redis...
        raise redis.TimeoutError("Timeout reading from socket")  # ...its answer never came

    with monkeypatch.context() as stalling:
        stalling.setattr(store, "create", stalled)
        first = post(client, SENDS[path], f"stalled-{path}", path=path)
    assert first.status_code == 202, first.get_json()
    again = post(client, SENDS[path], f"stalled-{path}", path=path)
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json()["id"] == first.get_json()["id"]
    assert len(queued_messages(app)) == 1


def test_a_captcha_stored_after_all_keeps_the_limits_it_took(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Accepted after all, its resend interval holds: a second code to the number at once is
    429, as after any accepted one (the service gave its limits back for a 503 it never was)."""
    create = NotificationStore.create

    def stalled(*args: Any, **kw: Any) -> Any:
        create(*args, **kw)
        raise redis.TimeoutError("Timeout reading from socket")

    body = SENDS["/v1/sms/captcha"]
    with monkeypatch.context() as stalling:
        stalling.setattr(NotificationStore, "create", stalled)
        assert post(client, body, "code-1", path="/v1/sms/captcha").status_code == 202
    assert_problem(post(client, body, "code-2", path="/v1/sms/captcha"), 429)


def test_a_write_that_timed_out_is_a_503_at_once_and_its_key_stays_pending(
    client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A slow failure (a Redis that hangs) is not looked behind, which would wait as long
    again: the 503 comes, and the key stays pending, so a retry with it is 409 "still being
    handled" until the record shows or the slot is old, never a second send now."""
    monkeypatch.setattr(idempotency, "WAIT", 0.1)
    monkeypatch.setattr(idempotency, "LOOK_WITHIN", 0.05)
    monkeypatch.setattr(queueing, "LOOK_WITHIN", 0.05)

    def hung(*_: Any, **__: Any) -> None:
        time.sleep(0.1)
        raise redis.TimeoutError("Timeout reading from socket")

    with monkeypatch.context() as hanging:
        hanging.setattr(NotificationStore, "create", hung)
        assert_problem(post(client, MAIL, "hung"), 503)
    waited = post(client, MAIL, "hung")
    assert_problem(waited, 409)
    assert waited.headers["Retry-After"] == "1"


def test_a_write_that_failed_and_was_not_made_is_a_503_that_frees_the_key(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(*_: Any, **__: Any) -> None:
        raise redis.ConnectionError("Connection refused")

    with monkeypatch.context() as down:
        down.setattr(NotificationStore, "create", refused)
        assert_problem(post(client, MAIL, "refused"), 503)
    retried = post(client, MAIL, "refused")
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert len(queued_messages(app)) == 1


def test_a_request_cut_off_after_storing_keeps_its_key_and_its_retry_replays(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A worker's graceful timeout throws GreenletExit (a BaseException) into a handler that has
    stored and queued its mail but not answered: the retry with its key is that answer, not a
    second mail."""
    from notifier.api import mail

    def cut_off(*_: Any, **__: Any) -> None:
        raise SystemExit  # as GreenletExit: not an Exception

    with monkeypatch.context() as cutting:
        cutting.setattr(mail, "accepted", cut_off)
        with pytest.raises(SystemExit):
            post(client, MAIL, "cut-off")
    assert len(queued_messages(app)) == 1
    retried = post(client, MAIL, "cut-off")
    assert retried.status_code == 202 and retried.headers["Idempotent-Replayed"] == "true"
    assert len(queued_messages(app)) == 1


def test_a_first_request_that_died_before_storing_frees_its_key_once_it_is_old(
    app: Flask, client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It noted an id and died before storing it: while it may still be running a retry waits
    (and is 409), and once it is older than a request can live the retry sends, once."""
    monkeypatch.setattr(idempotency, "WAIT", 0.2)
    keys: IdempotencyKeys = app.extensions["notifier"].idempotency

    def died_before_storing(*_: Any, **__: Any) -> None:
        raise SystemExit  # as a killed process: after noting the id, before the store

    with monkeypatch.context() as dying:
        dying.setattr(NotificationStore, "create", died_before_storing)
        with pytest.raises(SystemExit):
            post(client, MAIL, "died-early")
    slot = keys.slot("tester", "died-early")
    dead = keys.redis.hget(slot, "id")
    assert dead  # noted before the store it never made
    waited = post(client, MAIL, "died-early")
    assert_problem(waited, 409)
    assert waited.headers["Retry-After"] == "1"  # ask again: not a key reused with another body
    assert queued_messages(app) == []
    keys.redis.hset(slot, "noted_at", int((time.time() - PENDING - 1) * 1000))
    retried = post(client, MAIL, "died-early")
    assert retried.status_code == 202 and "Idempotent-Replayed" not in retried.headers
    assert retried.get_json()["id"] != dead
    assert len(queued_messages(app)) == 1
    assert post(client, MAIL, "died-early").headers["Idempotent-Replayed"] == "true"

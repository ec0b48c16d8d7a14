"""The upload tasks (``qiniu_uptoken``, ``s3_upload_form``, and ``upload_form`` for every
store) through a real worker give what their routes give, and refuse what they refuse."""

from __future__ import annotations

import json
import re
from functools import partial
from typing import Any

import pytest
from celery import Celery

from notifier.providers.registry import UPLOAD_STORES
from tests.support.harness.api import FULL, error_locs
from tests.support.harness.clients import QINIU, bucket
from tests.support.harness.stack import Stack
from tests.support.harness.wait import wait_for
from tests.support.peers.qiniu import check_token

pytestmark = pytest.mark.integration


def policy_of(token: str) -> dict[str, object]:
    return check_token(
        token, access_key=QINIU["qiniu_access_key"], secret_key=QINIU["qiniu_secret_key"]
    )


def test_task_answers_like_the_route(stack: Stack, caller: Celery) -> None:
    by_task = caller.send_task("qiniu_uptoken", kwargs={"client": "tester", **FULL}).get(timeout=30)
    by_route = stack.post("/v1/uploads/qiniu/token", FULL).json()
    assert set(by_task) == set(by_route)
    for field in ("bucket", "key", "upload_url"):
        assert by_task[field] == by_route[field]
    task_policy, route_policy = policy_of(by_task["token"]), policy_of(by_route["token"])
    assert abs(int(task_policy.pop("deadline")) - int(route_policy.pop("deadline"))) <= 5  # type: ignore[call-overload]
    assert task_policy == route_policy


def test_task_refuses_a_bucket_the_client_lacks(caller: Celery) -> None:
    result = caller.send_task(
        "qiniu_uptoken", kwargs={"client": "tester", **FULL, "bucket": "invoices"}
    )
    with pytest.raises(Exception) as caught:
        result.get(timeout=30)
    assert type(caught.value).__name__ == "Forbidden"
    assert "invoices" in str(caught.value)


STORES = list(UPLOAD_STORES)
TASKS = {"qiniu": "qiniu_uptoken", "s3": "s3_upload_form"}


def task_of(store: str) -> tuple[str, dict[str, str]]:
    """The task a store's route is, and what names the store to it."""
    return (TASKS[store], {}) if store in TASKS else ("upload_form", {"store": store})


@pytest.mark.parametrize(
    ("store", "change"),
    [
        ("s3", {"expires_in": 86401}),
        ("s3", {"expires_in": 59}),
        ("s3", {"key": ""}),
        ("s3", {"key": "u/${filename}"}),
        ("s3", {"max_size": 0}),
        ("s3", {"key_prefix": "u/"}),  # with the key: refused past validation, by the service
        ("qiniu", {"callback_url": "https://a/cb;ftp://b/cb", "callback_body": "k=$(key)"}),
        # Keys that are no plain path, for every store, before the bucket (not the client's).
        *(
            (store, {"key": key, "bucket": bucket(store, "invoices")})
            for store in STORES
            for key in ("../x.png", "u/./../x", "/u/1.png", "u\\1.png", "u/1\x00.png")
        ),
        *((store, {"key": None, "key_prefix": "u/../../alpha/"}) for store in STORES),
    ],
)
def test_the_task_refuses_what_the_route_refuses_naming_the_same_field(
    stack: Stack, caller: Celery, store: str, change: dict[str, Any]
) -> None:
    body = {"bucket": bucket(store), "key": "u/bad.png", **change}
    answer = stack.post(f"/v1/uploads/{store}/token", body)
    assert answer.status_code == 422, answer.text
    by_route = {".".join(map(str, loc[1:])) for loc in error_locs(answer.json())}
    task, naming = task_of(store)
    refused = caller.send_task(task, kwargs={**naming, "client": "tester", **body})
    with pytest.raises(Exception) as caught:
        refused.get(timeout=30)
    assert type(caught.value).__name__ == "Unprocessable"
    named = re.match(r"the keyword arguments are not valid \((.*?)\): ", str(caught.value))
    assert named, caught.value
    assert set(named[1].split(", ")) == by_route


def test_a_refused_task_is_logged_once_at_info_without_a_traceback(
    stack: Stack, caller: Celery
) -> None:
    """A refusal is the caller's answer, not the worker's error: Celery's ``throws``. A task
    that succeeds has no line at all (its answer is a signed token)."""
    taken = caller.send_task("qiniu_uptoken", kwargs={"client": "tester", **FULL})
    assert taken.get(timeout=30)["token"]
    refused = [
        caller.send_task("qiniu_uptoken", kwargs={"client": "tester", **FULL, "bucket": "invoices"}),
        caller.send_task("s3_upload_form", kwargs={"client": "tester", "bucket": "avatars", "expires_in": 1}),
        caller.send_task("qiniu_uptoken", kwargs={"client": "nobody", "bucket": "avatars"}),
    ]  # fmt: skip
    for result, error in zip(refused, ("Forbidden", "Unprocessable", "Forbidden"), strict=True):
        with pytest.raises(Exception) as caught:
            result.get(timeout=30)
        assert type(caught.value).__name__ == error

    def lines_of(task_id: str) -> list[dict[str, Any]]:
        lines = (json.loads(line) for line in stack.worker.output().splitlines() if line[:1] == "{")
        return [line for line in lines if task_id in line["msg"]]

    for result, error in zip(refused, ("Forbidden", "Unprocessable", "Forbidden"), strict=True):
        (line,) = wait_for(partial(lines_of, result.id), what=f"the log line of {result.id}")
        assert line["level"] == "INFO" and f"raised expected: {error}(" in line["msg"], line
        assert "exc" not in line and "Traceback" not in json.dumps(line), line
    assert lines_of(taken.id) == []

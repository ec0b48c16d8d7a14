"""``upload_form``, called as a caller's message would call it, without a worker: for every
registered store it answers exactly what the store's route answers, and refuses as
``s3_upload_form`` does (``tests/integration/test_uploads.py`` runs it through a worker)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from flask.testing import FlaskClient

from notifier.errors import Forbidden, Unprocessable
from notifier.providers.registry import UPLOAD_STORES
from notifier.tasks.uploads import upload_form
from tests.support.harness.clients import auth, bucket
from tests.support.peers import gcs

T = TypeVar("T")
# A body every store takes (Qiniu's has no content type or size: its own fields instead).
BODIES = {"qiniu": {"key": "u/by-task.png", "fsize_limit": 1024, "mime_limit": "image/*"}}
FORM = {"key": "u/by-task.png", "content_type": "image/png", "max_size": 1024, "expires_in": 600}


def in_one_second(make: Callable[[], T]) -> T:
    """What ``make`` makes, made again until it was made within one second of the clock: every
    store signs the time to the second, so two answers made in one second are equal."""
    while True:
        second = int(time.time())
        made = make()
        if int(time.time()) == second:
            return made


@pytest.mark.parametrize("store", list(UPLOAD_STORES))
@pytest.mark.parametrize("shape", ["key", "key_prefix"])
def test_the_task_answers_what_the_route_answers(
    client: FlaskClient, store: str, shape: str
) -> None:
    body: dict[str, Any] = {"bucket": bucket(store), **BODIES.get(store, FORM)}
    if shape == "key_prefix":
        body["key_prefix"] = "u/7/"
        del body["key"]

    def both() -> tuple[Any, dict[str, Any]]:
        route = client.post(f"/v1/uploads/{store}/token", json=body, headers=auth())
        return route, upload_form(store=store, client="tester", **body)

    route, by_task = in_one_second(both)
    assert route.status_code == 200, route.get_json()
    assert to_the_second(store, by_task) == to_the_second(store, route.get_json())


def to_the_second(store: str, answer: dict[str, Any]) -> dict[str, Any]:
    """The answer as two made in one second share it. Every store but Cloud Storage signs the
    time to the second; google-cloud-storage signs its policy's expiration to the microsecond
    (``now`` plus the seconds asked): there, the answer once its signature verifies, with the
    policy's conditions and its expiration's second."""
    if store != "gcs":
        return answer
    fields = dict(answer["fields"])
    assert gcs.verifies(fields)
    policy = gcs.policy_of(fields)
    del fields["policy"], fields["x-goog-signature"]
    return {**answer, "fields": fields, "conditions": policy["conditions"],
            "expires_at": answer["expires_at"][:19], "expiration": policy["expiration"][:19]}  # fmt: skip


@pytest.mark.parametrize("store", list(UPLOAD_STORES))
def test_the_task_refuses_as_the_route_does(client: FlaskClient, store: str) -> None:
    with pytest.raises(Forbidden, match="invoices"):
        upload_form(store=store, client="tester", bucket=bucket(store, "invoices"), key="i/1.pdf")
    with pytest.raises(Forbidden, match="upload scope"):
        upload_form(store=store, client="mailer", bucket=bucket(store), key="u/1.png")
    with pytest.raises(Unprocessable, match=r"\(key\): key: must not start with /") as caught:
        upload_form(store=store, client="tester", bucket=bucket(store), key="/u/1.png")
    assert [e.loc for e in caught.value.errors] == [("key",)]


def test_an_unknown_store_is_refused_naming_it(client: FlaskClient) -> None:
    with pytest.raises(Unprocessable, match=r"\(store\): .*no upload store 'nas'") as caught:
        upload_form(store="nas", client="tester", bucket="avatars", key="u/1.png")
    assert [e.loc for e in caught.value.errors] == [("store",)]

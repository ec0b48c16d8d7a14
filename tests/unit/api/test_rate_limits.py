"""Per-client token buckets on the sending routes."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest
import redis
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from tests.support.harness.api import MAIL, assert_problem
from tests.support.harness.clients import auth


def test_a_client_over_its_rate_gets_429_with_retry_after(client: FlaskClient) -> None:
    answers = [client.post("/v1/mail", json=MAIL, headers=auth("throttled")) for _ in range(4)]
    assert [a.status_code for a in answers[:3]] == [202, 202, 202]
    body = assert_problem(answers[3], 429)
    assert "3/m" in body["detail"]
    # One token comes back every 20 s.
    assert 15 <= int(answers[3].headers["Retry-After"]) <= 20
    # Other clients have buckets of their own.
    assert client.post("/v1/mail", json=MAIL, headers=auth()).status_code == 202


def test_the_default_rate_applies_to_clients_without_one(
    make_settings: Callable[..., Settings],
) -> None:
    client = create_app(make_settings(rate_limit="2/h")).test_client()
    codes = [client.post("/v1/mail", json=MAIL, headers=auth()).status_code for _ in range(3)]
    assert codes == [202, 202, 429]
    body = {"phone": "+8613800138000", "purpose": "login"}
    assert client.post("/v1/sms/captcha", json=body, headers=auth()).status_code == 429


@pytest.mark.parametrize(("fail_open", "status"), [(True, 202), (False, 503)])
def test_a_slow_redis_fails_open_or_closed_as_set(
    make_settings: Callable[..., Settings], fail_open: bool, status: int
) -> None:
    app = create_app(make_settings(rate_limit_fail_open=fail_open, rate_limit_timeout=0.05))
    client = app.test_client()
    db = redis.Redis.from_url(app.extensions["notifier"].redis_url)
    db.client_pause(600, all=False)
    try:
        response = client.post("/v1/mail", json=MAIL, headers=auth())
    finally:
        db.client_unpause()
    assert response.status_code == status, response.get_data(as_text=True)
    assert (response.headers.get("Retry-After") == "5") is (status == 503)


def test_the_bucket_holds_under_a_race(
    client: FlaskClient, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings())
    codes: list[int] = []
    barrier = threading.Barrier(6)

    def one() -> None:
        barrier.wait()
        codes.append(
            app.test_client().post("/v1/mail", json=MAIL, headers=auth("throttled")).status_code
        )

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(codes) == [202, 202, 202, 429, 429, 429]

"""The operator console in the tests: an operator, and logging in through a Flask test client."""

from __future__ import annotations

import json
import re
from functools import cache
from typing import Any

from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

OPERATOR = "ada"
PASSWORD = "correct horse battery staple"
BASE = "https://notifier.test"  # the console's cookies are Secure: the test client speaks https


@cache
def console_users() -> list[dict[str, Any]]:
    """``NOTIFIER_CONSOLE_USERS`` of the tests: one operator (hashed once a run)."""
    return [{"name": OPERATOR, "password_hash": generate_password_hash(PASSWORD)}]


def console_users_json() -> str:
    return json.dumps(console_users())


def csrf_of(html: str) -> str:
    """The CSRF token of a page's first form."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html
    return found.group(1)


def log_in(client: FlaskClient, name: str = OPERATOR, password: str = PASSWORD) -> Any:
    """Log ``client`` in (through the login form, as a browser does); the answer to the POST."""
    form = client.get("/console/login", base_url=BASE)
    return client.post(
        "/console/login",
        data={"csrf": csrf_of(form.get_data(as_text=True)), "name": name, "password": password},
        base_url=BASE,
    )


def page(client: FlaskClient, path: str) -> str:
    """A console page's HTML (200 or the test fails)."""
    answer = client.get(path, base_url=BASE)
    assert answer.status_code == 200, (answer.status_code, answer.get_data(as_text=True)[:500])
    return answer.get_data(as_text=True)


def scheduled(api: FlaskClient, who: str, body: dict[str, Any], path: str = "/v1/mail") -> str:
    """The id of a notification ``who`` schedules a day from now (so its payload, and its
    recipient, stay in Redis)."""
    from datetime import UTC, datetime, timedelta

    from tests.support.harness.clients import auth

    later = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    answer = api.post(path, json={**body, "send_at": later}, headers=auth(who))
    assert answer.status_code == 202, answer.get_data(as_text=True)
    found: str = answer.get_json()["id"]
    return found


def pause_mail(redis: Any, client: str) -> None:
    """Pause ``client``'s mail as the bounce-rate guard does: ten mails a provider took and one
    permanent bounce, weighed by the guard's own script (10%, the pause rate)."""
    import time

    from notifier.stores.guard import BounceGuard, Thresholds, count_sent

    rates = Thresholds(
        min_volume=10,
        warn={"bounce": 0.05, "complaint": 0.001},
        pause={"bounce": 0.10, "complaint": 0.005},
    )
    with redis.pipeline(transaction=False) as pipe:
        for _ in range(10):
            count_sent(pipe, client, time.time())
        pipe.execute()
    assert BounceGuard(redis, rates).note(client, "bounce").verdict == "pause"

"""The console's gate: sessions, CSRF, the login limit, slow failures, headers, the audit log."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from functools import cache

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import check_password_hash, generate_password_hash

from config import Settings
from notifier import create_app
from notifier.console import auth
from notifier.console.auth import ADDRESS_LIMIT, COOKIE, FAILURE_DELAY, NAME_LIMIT
from tests.support.harness.console import (
    BASE,
    OPERATOR,
    PASSWORD,
    csrf_of,
    log_in,
    page,
    scheduled,
)

MAIL = {"to": ["ada@example.com"], "subject": "Hi", "text": "Hello"}

PAGES = ["/console/", "/console/clients", "/console/messages", "/console/batches",
         "/console/suppressions", "/console/notifications/x", "/console/batches/x"]  # fmt: skip
CHANGES = ["/console/notifications/x/cancel", "/console/batches/x/cancel",
           "/console/suppressions/add", "/console/suppressions/remove",
           "/console/messages/search", "/console/clients/shop/resume",
           "/console/logout"]  # fmt: skip


@pytest.mark.parametrize("path", PAGES)
def test_no_page_without_a_session(app: Flask, path: str) -> None:
    answer = app.test_client().get(path, base_url=BASE)
    assert answer.status_code == 303
    assert answer.headers["Location"].startswith("/console/login?next=")


@pytest.mark.parametrize("path", CHANGES)
def test_no_change_without_a_session(app: Flask, path: str) -> None:
    answer = app.test_client().post(path, data={"csrf": "anything"}, base_url=BASE)
    assert answer.status_code == 403


def test_a_session_cookie_is_secure_httponly_strict_and_ends_at_logout(app: Flask) -> None:
    client = app.test_client()
    answer = log_in(client)
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"
    cookie = next(c for c in answer.headers.getlist("Set-Cookie") if c.startswith(f"{COOKIE}="))
    assert {"Secure", "HttpOnly", "SameSite=Strict", "Path=/"} <= set(cookie.split("; "))
    assert cookie.startswith("__Host-") and "Domain=" not in cookie  # none planted beside it
    assert "Max-Age" not in cookie and "Expires" not in cookie  # Redis keeps the idle time
    html = page(client, "/console/")
    client.post("/console/logout", data={"csrf": csrf_of(html)}, base_url=BASE)
    # The session is gone from Redis: the old cookie opens nothing.
    token = cookie.split(";")[0].split("=", 1)[1]
    again = app.test_client()
    again.set_cookie(COOKIE, token, domain="notifier.test", path="/")
    assert again.get("/console/", base_url=BASE).status_code == 303


@pytest.mark.parametrize("change", ["removed", "new password"])
def test_taking_an_operator_out_or_a_new_password_ends_her_sessions(
    app: Flask, make_settings: Callable[..., Settings], change: str
) -> None:
    """ASVS V3.3: her sessions end with her account or her password, not 12 hours later."""
    operator = app.test_client()
    assert log_in(operator).status_code == 303
    html = page(operator, "/console/")
    others = [{"name": "bob", "password_hash": generate_password_hash("bob's own password")}]
    users = others if change == "removed" else [
        {"name": OPERATOR, "password_hash": generate_password_hash("a new one")}, *others
    ]  # fmt: skip
    restarted = create_app(make_settings(console_users=users))  # the same Redis
    cookie = operator.get_cookie(COOKIE, domain="notifier.test")
    assert cookie is not None
    client = restarted.test_client()
    client.set_cookie(COOKIE, cookie.value, domain="notifier.test", path="/")
    assert client.get("/console/clients", base_url=BASE).status_code == 303
    add = {"csrf": csrf_of(html), "address": "x@example.com"}
    assert client.post("/console/suppressions/add", data=add, base_url=BASE).status_code == 403
    # Ended, not only refused: the first app's settings no longer open it either.
    assert operator.get("/console/", base_url=BASE).status_code == 303


def test_a_second_session_cookie_planted_beside_the_first_opens_nothing(
    operator: FlaskClient,
) -> None:
    """Two cookies of one name (a planted one a browser may send first): neither is taken."""
    assert operator.get("/console/", base_url=BASE).status_code == 200
    mine = operator.get_cookie(COOKIE, domain="notifier.test")
    assert mine is not None
    both = {"Cookie": f"{COOKIE}=planted-by-mallory; {COOKIE}={mine.value}"}
    fresh = operator.application.test_client(use_cookies=False)
    assert fresh.get("/console/", headers=both, base_url=BASE).status_code == 303


def test_a_post_from_another_sites_page_is_403_the_login_too(app: Flask) -> None:
    client = app.test_client()
    form = client.get("/console/login", base_url=BASE).get_data(as_text=True)
    data = {"csrf": csrf_of(form), "name": OPERATOR, "password": PASSWORD}
    away = {"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}
    assert client.post("/console/login", data=data, headers=away, base_url=BASE).status_code == 403
    here = {"Sec-Fetch-Site": "same-origin"}
    assert client.post("/console/login", data=data, headers=here, base_url=BASE).status_code == 303


@pytest.mark.parametrize("path", CHANGES)
def test_a_change_without_the_csrf_token_is_403(operator: FlaskClient, path: str) -> None:
    for form in ({}, {"csrf": "not-the-token"}):
        answer = operator.post(path, data=form, base_url=BASE)
        assert answer.status_code == 403, path
        assert "CSRF" in answer.get_data(as_text=True)


def test_a_login_without_its_form_token_is_403(app: Flask) -> None:
    client = app.test_client()
    client.get("/console/login", base_url=BASE)
    answer = client.post(
        "/console/login", data={"name": OPERATOR, "password": PASSWORD}, base_url=BASE
    )
    assert answer.status_code == 403
    assert COOKIE not in "".join(answer.headers.getlist("Set-Cookie"))


def test_a_wrong_password_is_slow_and_opens_nothing(app: Flask) -> None:
    client = app.test_client()
    started = time.monotonic()
    answer = log_in(client, password="wrong password")
    # A lower bound, never an upper one: the failure waits FAILURE_DELAY on purpose.
    assert time.monotonic() - started >= FAILURE_DELAY
    assert answer.status_code == 401
    assert "Wrong name or password" in answer.get_data(as_text=True)
    assert client.get("/console/", base_url=BASE).status_code == 303
    # An unknown name takes the same path: checked against a hash, then the same wait.
    started = time.monotonic()
    assert log_in(client, name="nobody").status_code == 401
    assert time.monotonic() - started >= FAILURE_DELAY


def test_the_password_hashes_are_slow_ones(app: Flask) -> None:
    from tests.support.harness.console import console_users

    # werkzeug's scrypt: N=2**15, r=8, p=1 (OWASP's minimum is N=2**17 with r=8 for scrypt's
    # memory-hard cost; werkzeug's default is what it ships).
    assert console_users()[0]["password_hash"].startswith("scrypt:32768:8:1$")


def test_an_unknown_name_is_checked_against_a_hash_made_as_the_operators(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """So an unknown name takes as long as a wrong password whatever werkzeug method made the
    operators' entries: against the default scrypt decoy, a pbkdf2 entry of a million rounds took
    0.6-1.4 s to refuse and an unknown name 0.3 s, which told names apart."""
    from werkzeug.security import generate_password_hash

    from config import ConsoleUser

    method = "pbkdf2:sha256:600000"
    made = generate_password_hash("the operator's password", method=method)
    operators = auth.Operators([ConsoleUser.model_validate({"name": "ada", "password_hash": made})])
    checked: list[str] = []

    def check(hashed: str, password: str) -> bool:
        checked.append(hashed)
        return False

    monkeypatch.setattr(auth, "check_password_hash", check)
    assert not operators.check("ada", "wrong") and not operators.check("nobody", "wrong")
    assert [h.split("$", 1)[0] for h in checked] == [method, method]
    assert checked[1] != made  # the decoy, no operator's hash


@pytest.fixture
def hashes_checked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """The login limit's tests try the same password against the same hash tens of times: each
    pair is checked (scrypt, 0.1 s) the first time, then its answer given again. What the limit
    counts does not change; the check's own cost is the slow-failure test's."""
    monkeypatch.setattr(auth, "check_password_hash", cache(check_password_hash))


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """The login limit's clock, held where a test sets it."""
    now = [time.time()]
    monkeypatch.setattr(auth, "time", type("Clock", (), {"time": staticmethod(lambda: now[0])}))
    return now


@pytest.mark.usefixtures("hashes_checked_once")
def test_logins_are_limited_per_name(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("notifier.console.views.FAILURE_DELAY", 0)
    client = app.test_client()
    for _ in range(NAME_LIMIT):
        assert log_in(client, password="guess").status_code == 401
    # Past the limit even the right password is refused, before it is looked at.
    refused = log_in(client)
    assert refused.status_code == 429
    assert "Too many failed logins: try again in 15 minutes" in refused.get_data(as_text=True)


@pytest.mark.usefixtures("hashes_checked_once")
def test_the_limit_slides_across_a_quarter_hours_turn(
    app: Flask, monkeypatch: pytest.MonkeyPatch, clock: list[float]
) -> None:
    # Failures a minute each side of a quarter hour count together. (Counted in fixed windows,
    # five before the turn and five after all reached the password check: ten in two minutes.)
    monkeypatch.setattr("notifier.console.views.FAILURE_DELAY", 0)
    turn = (clock[0] // auth.WINDOW + 1) * auth.WINDOW
    client = app.test_client()
    clock[0] = turn - 60
    for _ in range(NAME_LIMIT - 2):
        assert log_in(client, password="guess").status_code == 401
    clock[0] = turn + 60
    for _ in range(2):
        assert log_in(client, password="guess").status_code == 401
    refused = log_in(client)
    assert refused.status_code == 429
    assert "try again in 13 minutes" in refused.get_data(as_text=True)  # 15 less the 2 between
    # Guessing on while locked counts nothing: as the first failures leave the window, logins
    # may be tried again, one for each that left.
    for _ in range(3):
        assert log_in(client, password="guess").status_code == 429
    clock[0] = turn - 60 + auth.WINDOW + 1
    for _ in range(NAME_LIMIT - 2):
        assert log_in(client, password="guess").status_code == 401
    assert log_in(client).status_code == 429  # the window is full again
    clock[0] = turn + 60 + auth.WINDOW + 1  # all five have left it
    assert log_in(client).status_code == 303


@pytest.mark.usefixtures("hashes_checked_once")
def test_right_passwords_do_not_count_against_the_limit(app: Flask) -> None:
    for _ in range(NAME_LIMIT + 1):
        assert log_in(app.test_client()).status_code == 303
    # Each was counted, then forgiven: nothing is left of them.
    assert list(app.extensions["notifier"].redis.scan_iter(f"{auth.PREFIX}:login:*")) == []


@pytest.mark.usefixtures("hashes_checked_once")
def test_logins_are_limited_per_address(app: Flask, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("notifier.console.views.FAILURE_DELAY", 0)
    monkeypatch.setattr(auth, "NAME_LIMIT", ADDRESS_LIMIT + 1)
    client = app.test_client()
    for n in range(ADDRESS_LIMIT):
        assert log_in(client, name=f"guess{n}", password="guess").status_code == 401
    assert log_in(client).status_code == 429
    # Another address is not held by this one's failures.
    other = app.test_client()
    form = other.get("/console/login", base_url=BASE, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    answer = other.post(
        "/console/login",
        data={"csrf": csrf_of(form.get_data(as_text=True)), "name": OPERATOR, "password": PASSWORD},
        base_url=BASE,
        environ_base={"REMOTE_ADDR": "10.0.0.9"},
    )
    assert answer.status_code == 303


@pytest.mark.parametrize(
    "wanted", ["/console/%0d%0aSet-Cookie:%20x=1", "/console/%0a", "/console/%5cevil", "//evil"]
)
def test_a_login_goes_on_only_to_a_console_page_it_can_name(app: Flask, wanted: str) -> None:
    # A CR or LF in the page to go on to made the redirect a 500 after the password was right
    # (Werkzeug refuses it in a Location header): the session was made, its cookie never set.
    client = app.test_client()
    form = client.get(f"/console/login?next={wanted}", base_url=BASE)
    answer = client.post(
        f"/console/login?next={wanted}",
        data={"csrf": csrf_of(form.get_data(as_text=True)), "name": OPERATOR, "password": PASSWORD},
        base_url=BASE,
    )
    assert answer.status_code == 303 and answer.headers["Location"] == "/console/"
    assert any(c.startswith(f"{COOKIE}=") for c in answer.headers.getlist("Set-Cookie"))


def test_a_pages_live_refresh_does_not_keep_its_session_from_idling_out(
    app: Flask, operator: FlaskClient
) -> None:
    redis = app.extensions["notifier"].redis
    (key,) = redis.scan_iter(f"{auth.PREFIX}:session:*")
    redis.expire(key, 60)
    refreshed = operator.get("/console/", base_url=BASE, headers={"X-Console-Refresh": "1"})
    assert refreshed.status_code == 200 and redis.ttl(key) <= 60
    assert operator.get("/console/", base_url=BASE).status_code == 200  # the operator's own
    assert redis.ttl(key) > auth.IDLE - 60


def test_every_page_has_a_csp_without_inline_script_or_style(operator: FlaskClient) -> None:
    for path in ["/console/login", *PAGES[:5]]:
        answer = operator.get(path, base_url=BASE)
        csp = answer.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "style-src 'self'" in csp
        assert "unsafe-inline" not in csp and "frame-ancestors 'none'" in csp
        assert answer.headers["X-Frame-Options"] == "DENY"
        assert answer.headers["Cache-Control"] == "no-store"
        html = answer.get_data(as_text=True)
        assert re.findall(r"<script(?![^>]*\bsrc=)[^>]*>", html) == [], path
        assert not re.search(r"\sstyle=|\son[a-z]+=|<style", html), path


def test_every_change_is_one_audit_line_without_a_recipient(
    operator: FlaskClient, app: Flask, caplog: pytest.LogCaptureFixture
) -> None:
    made = scheduled(app.test_client(), "shop", MAIL)
    html = page(operator, "/console/suppressions?client=shop")
    token = csrf_of(html)
    with caplog.at_level(logging.INFO, logger="notifier.console.audit"):
        operator.post(f"/console/notifications/{made}/cancel", data={"csrf": token},
                      base_url=BASE)  # fmt: skip
        operator.post("/console/suppressions/add",
                      data={"csrf": token, "client": "shop", "address": "bob@example.com"},
                      base_url=BASE)  # fmt: skip
    lines = [r for r in caplog.records if r.name == "notifier.console.audit"]
    assert [(r.action, r.target, r.operator) for r in lines] == [  # type: ignore[attr-defined]
        ("cancel_notification", made, OPERATOR),
        ("add_suppression", "b***@example.com", OPERATOR),
    ]
    assert "bob@example.com" not in caplog.text


def test_the_console_is_off_unless_configured(make_settings: Callable[..., Settings]) -> None:
    client = create_app(make_settings()).test_client()
    for path in ("/console", "/console/", "/console/login"):
        answer = client.get(path, base_url=BASE)
        assert answer.status_code == 404
        assert "NOTIFIER_CONSOLE_USERS" in answer.get_data(as_text=True)

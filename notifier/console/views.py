"""The console's pages. Every page needs a session (else the login page), every POST the
session's CSRF token (else 403), and every change is one line of the audit log: who, what,
which id, never a recipient in the clear."""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any, TypeVar, get_args
from urllib.parse import urlencode

from flask import (
    Blueprint,
    abort,
    current_app,
    g,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from pydantic import ValidationError
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Response

from notifier.api.openapi import MAX_PATH_ID
from notifier.console import charts, figures
from notifier.console.auth import (
    COOKIE,
    FAILURE_DELAY,
    LOGIN_COOKIE,
    LoginLimit,
    Operators,
    Sealed,
    Session,
    Sessions,
    new_token,
    same_token,
)
from notifier.errors import Refused
from notifier.redact import mask_recipient
from notifier.runtime import runtime
from notifier.schemas import Status, SuppressionRequest
from notifier.services import message_log
from notifier.services.batches import cancel_batch
from notifier.stores.batches.keys import STATUSES as BATCH_STATUSES
from notifier.stores.notifications import FINAL, RECEIPT_STATUSES

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
audit_log = logging.getLogger("notifier.console.audit")
T = TypeVar("T")
KINDS = ("mail", "sms", "sms_captcha")
STATUSES = get_args(Status)
DONE = frozenset((*FINAL, *RECEIPT_STATUSES))
OPEN = frozenset({"console.login", "console.static"})  # what a visitor without a session sees
REFRESH_HEADER = "X-Console-Refresh"  # console.js's live refresh sends it
# Where a login may go on to: a console page, its path without a control character, a space or
# a backslash (a CR or LF in a Location header is refused by Werkzeug: a 500 after the login).
_NEXT = re.compile(r"/console/[^\x00-\x20\x7f-\x9f\\]*")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)


@dataclass(frozen=True)
class Console:
    """What the console keeps for the app's life (``app.extensions["console"]``)."""

    operators: Operators
    sessions: Sessions
    limit: LoginLimit
    sealed: Sealed
    trusted_proxies: int


def console() -> Console:
    found: Console = current_app.extensions["console"]
    return found


OFF = (
    '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Console off</title>'
    "</head><body><h1>The console is off</h1><p>No operator is configured. Add one with "
    "<code>notifier console add-user NAME</code> and set <code>NOTIFIER_CONSOLE_USERS</code> to"
    " what it prints (docs/console.md).</p></body></html>"
)


def off(rest: str = "") -> Response:
    """The console is off (no operator configured): say how to turn it on."""
    return _secured(Response(OFF, 404, mimetype="text/html"))


def _cookie(response: Response, name: str, value: str, max_age: int | None = None) -> None:
    # __Host-: Secure, Path=/ and no Domain, or the browser refuses it.
    response.set_cookie(
        name, value, max_age=max_age, path="/", secure=True, httponly=True, samesite="Strict"
    )


@bp.before_request
def _session() -> Response | None:
    """A page needs a session; a change, the session's CSRF token too."""
    if request.endpoint in OPEN:
        return None
    # A page's live refresh (console.js) is no sign of an operator: an open overview would keep
    # its session from ever idling out.
    refresh = request.headers.get(REFRESH_HEADER) == "1"
    c = console()
    session = c.sessions.find(_one_cookie(COOKIE), touch=not refresh)
    if session is not None and c.operators.key(session.operator) != session.key:
        # Taken out of NOTIFIER_CONSOLE_USERS, or given a new password, since it began.
        c.sessions.end(_one_cookie(COOKIE))
        session = None
    if session is None:
        if request.method == "GET":
            return redirect(url_for("console.login", next=request.full_path.rstrip("?")), 303)
        abort(403, "no session: log in again")
    g.console_session = session
    if request.method == "POST" and not same_token(request.form.get("csrf"), session.csrf):
        abort(403, "the form's CSRF token is missing or wrong: reload the page")
    return None


def _one_cookie(name: str) -> str | None:
    """The cookie's value, or None when the request carries more than one of that name (one
    planted beside the real one, which a browser may send first)."""
    found = request.cookies.getlist(name)
    return found[0] if len(found) == 1 else None


@bp.before_request
def _same_site() -> None:
    """No change comes from another site's page (Fetch Metadata; SameSite=Strict already keeps
    the cookies from such a request): a login form posted from elsewhere included."""
    if request.method == "POST" and request.headers.get("Sec-Fetch-Site") == "cross-site":
        abort(403, "a change from another site's page")


@bp.after_request
def _headers(response: Response) -> Response:
    return _secured(response)


def _secured(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CSP
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Referrer-Policy"] = "no-referrer"
    if not request.path.startswith("/console/static/"):
        response.headers["Cache-Control"] = "no-store"
    return response


@bp.errorhandler(HTTPException)
def _error(e: HTTPException) -> Response:
    page = render_template("console/error.html", status=e.code, title=e.name, detail=e.description)
    return make_response(page, e.code or 500)


def _session_now() -> Session:
    found: Session = g.console_session
    return found


def _page(template: str, **context: Any) -> str:
    return render_template(
        f"console/{template}", session=g.get("console_session"), mask=mask_recipient, **context
    )


def _audit(action: str, target: str, **more: str) -> None:
    """One line for a change: who, what, which id (never a recipient in the clear)."""
    operator = _session_now().operator
    audit_log.info(
        "console: %s %s by %s", action, target, operator,
        extra={"operator": operator, "action": action, "target": target, **more},
    )  # fmt: skip


def _address() -> str:
    """The address a login comes from: the peer, or with trusted proxies the one they saw."""
    hops = console().trusted_proxies
    seen = [a.strip() for a in request.headers.get("X-Forwarded-For", "").split(",") if a.strip()]
    if hops and len(seen) >= hops:
        return seen[-hops]
    return request.remote_addr or ""


# -- login


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response:
    """The login form; a POST checks it (its CSRF token is its own cookie's)."""
    if request.method == "GET":
        return _login_form()
    c = console()
    if not same_token(request.form.get("csrf"), _one_cookie(LOGIN_COOKIE) or ""):
        abort(403, "the login form's token is missing or wrong: reload the page")
    name = request.form.get("name", "")[:64]
    password = request.form.get("password", "")[:1024]
    address = _address()
    counted = c.limit.take(name, address)
    if (wait := counted.wait) is not None:
        time.sleep(FAILURE_DELAY)
        audit_log.warning(
            "console: login refused, too many failures", extra={"operator": name, "action": "login"}
        )
        return _login_form(
            f"Too many failed logins: try again in {math.ceil(wait / 60)} minutes.", 429
        )
    if not c.operators.check(name, password):
        time.sleep(FAILURE_DELAY)
        audit_log.warning(
            "console: login failed", extra={"operator": name, "action": "login_failed"}
        )
        return _login_form("Wrong name or password.", 401)
    c.limit.forgive(counted)
    token = c.sessions.begin(name, c.operators.key(name))
    audit_log.info("console: login by %s", name, extra={"operator": name, "action": "login"})
    wanted = request.args.get("next", "")
    response = redirect(wanted if _inside(wanted) else url_for("console.overview"), 303)
    _cookie(response, COOKIE, token)  # the browser's session: Redis keeps the idle time
    response.delete_cookie(LOGIN_COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


def _inside(path: str) -> bool:
    """Whether ``path`` is a console page to go on to (never another site)."""
    return bool(_NEXT.fullmatch(path)) and not path.startswith("/console//")


def _login_form(error: str | None = None, status: int = 200) -> Response:
    token = _one_cookie(LOGIN_COOKIE) or new_token()
    response = make_response(_page("login.html", error=error, login_token=token), status)
    _cookie(response, LOGIN_COOKIE, token, 3600)
    return response


@bp.post("/logout")
def logout() -> Response:
    c = console()
    _audit("logout", _session_now().operator)
    c.sessions.end(_one_cookie(COOKIE))
    response = redirect(url_for("console.login"), 303)
    response.delete_cookie(COOKIE, path="/", secure=True, httponly=True, samesite="Strict")
    return response


# -- overview and clients


@bp.get("/")
def overview() -> str:
    found = figures.overview(runtime())
    chart = {
        lane.name: charts.sends_chart(lane.name, lane.sent, lane.failed) for lane in found.lanes
    }
    return _page("overview.html", o=found, charts=chart)


@bp.get("/clients")
def clients() -> str:
    rt = runtime()
    resumed = request.args.get("resumed")
    return _page(
        "clients.html", clients=figures.clients(rt), thresholds=rt.guard.thresholds,
        resumed=resumed if resumed in _client_names() else None,
    )  # fmt: skip


@bp.post("/clients/<client>/resume")
def resume_client(client: str) -> Response:
    """Let a client's paused mail go again, as ``notifier clients resume`` does (409 when it is
    not paused: a resume would start its window again for nothing)."""
    if client not in _client_names():
        abort(404, "no such client in NOTIFIER_API_KEYS")
    guard = runtime().guard
    # Resuming also empties the window: never for a client the guard has not paused.
    pause = guard.resume(client, only_paused=True)
    if pause is None:
        abort(409, f"the mail of {client} is not paused: nothing to resume")
    _audit("resume_client", client, client=client, kind=pause.kind)
    return redirect(url_for("console.clients", resumed=client), 303)


# -- the message log and a notification's timeline


def _client_names() -> list[str]:
    return sorted({c.client for c in runtime().clients.values()})


def _choice(name: str, allowed: tuple[str, ...] | list[str]) -> str | None:
    value = request.args.get(name) or None
    if value is not None and value not in allowed:
        abort(400, f"{name}: not one of {', '.join(allowed)}")
    return value


def _time(name: str, *, to: bool = False) -> float | None:
    """A filter's time: UTC unless it names its offset; ``to``, a time to the minute (as the
    form sends it) takes in the whole of that minute."""
    value = request.args.get(name) or None
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value)
        when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
        at = when.timestamp()
    except (ValueError, OverflowError):  # OverflowError: 9999-12-31T23:59-05:00, past year 9999
        abort(400, f"{name}: a date and time, YYYY-MM-DDTHH:MM (UTC)")
    minute = re.fullmatch(r"[^T ]+[T ]\d\d:\d\d(Z|[+-]\d\d:\d\d)?", value) is not None
    return at + (60 - 1e-6 if to and minute else 0)


def _sealed_arg(name: str = "q") -> str | None:
    token = request.args.get(name)
    if not token:
        return None
    found = console().sealed.open(token, _session_now())
    if found is None:
        abort(400, f"{name}: a search of an earlier session: search again")
    return found


@bp.get("/messages")
def messages() -> str:
    clients_known = _client_names()
    reference = (request.args.get("reference") or "").strip() or None
    wanted = message_log.LogFilter(
        client=_choice("client", clients_known),
        kind=_choice("kind", KINDS),
        status=_choice("status", STATUSES),
        reference=reference,
        since=_time("since"),
        until=_time("until", to=True),
        recipient=_sealed_arg(),
    )
    try:
        found = message_log.page(runtime(), wanted, cursor=request.args.get("cursor") or None)
    except Refused as e:  # a cursor this log never gave (the rest is checked above)
        fault = e.faults[0]
        abort(400, f"{'.'.join(map(str, fault.field))}: {fault.message}")
    following = {**request.args.to_dict(), "cursor": found.next_cursor}
    later = (
        None
        if found.next_cursor is None
        else f"{url_for('console.messages')}?{urlencode(following)}"
    )

    return _page(
        "messages.html", rows=found.rows, next_page=later, wanted=wanted, args=request.args,
        clients=clients_known, kinds=KINDS, statuses=STATUSES,
        searched=None if wanted.recipient is None else mask_recipient(
            message_log.searched(wanted.recipient)
        ),
    )  # fmt: skip


@bp.post("/messages/search")
def search() -> Response:
    """A recipient searched for: sealed into the log's URL, never in it in the clear."""
    recipient = (request.form.get("recipient") or "").strip()
    kept = {k: v for k, v in request.form.items() if k not in ("csrf", "recipient") and v}
    if recipient:
        kept["q"] = console().sealed.seal(recipient, _session_now())
    return redirect(f"{url_for('console.messages')}?{urlencode(kept)}", 303)


@bp.get("/notifications/<notification_id>")
def notification(notification_id: str) -> str:
    rt = runtime()
    record = _found(rt.store.get, "notification", notification_id)
    events = _found(lambda i: message_log.timeline(rt, i), "notification", notification_id)
    return _page("notification.html", record=record, events=events, when=_when)


@bp.post("/notifications/<notification_id>/cancel")
def cancel_notification(notification_id: str) -> Response:
    """Cancel a scheduled notification, as DELETE /v1/notifications/<id> does."""
    rt = runtime()
    record = _found(rt.store.get, "notification", notification_id)
    before = rt.store.cancel(notification_id)
    if before != "scheduled":
        abort(409, f"the notification is {before or record.status}: only a scheduled one cancels")
    _audit("cancel_notification", notification_id, client=record.client)
    return redirect(url_for("console.notification", notification_id=notification_id), 303)


def _found(find: Callable[[str], T | None], what: str, found_id: str) -> T:
    """What ``find`` finds by ``found_id``; 404 when nothing (an id longer than any we make is
    unknown without asking Redis)."""
    found = find(found_id) if len(found_id) <= MAX_PATH_ID else None
    if found is None:
        abort(404, f"no such {what} (or it expired)")
    return found


def _when(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


# -- batches


@bp.get("/batches")
def batches() -> Response | str:
    wanted = (request.args.get("id") or "").strip()
    if wanted:
        return redirect(url_for("console.batch", batch_id=wanted), 303)
    return _page("batches.html", batches=runtime().batches.recent(50))


@bp.get("/batches/<batch_id>")
def batch(batch_id: str) -> str:
    rt = runtime()
    found = _found(rt.batches.get, "batch", batch_id)
    start = request.args.get("cursor", "0")
    if not (start.isascii() and start.isdigit() and len(start) <= 5):
        abort(400, "cursor: the next of an earlier page")
    # A row not fanned out yet has no notification page (404, as on the API): no link to one.
    made: set[str] = set()
    rows, following = rt.batches.page(
        found, status=None, start=int(start), limit=100, scan=2000, made=made
    )
    done = sum(n for status, n in found.counts.items() if status in DONE)
    return _page(
        "batch.html", batch=found, rows=rows, following=following, done=done, made=made,
        # Rounded down: 999 of 1,000 is 99%, not the 100% of a finished batch.
        percent=100 * done // found.total,
        statuses=BATCH_STATUSES, finished=done >= found.total,  # a cancel's rows in flight too
    )  # fmt: skip


@bp.post("/batches/<batch_id>/cancel")
def cancel_batch_view(batch_id: str) -> Response:
    """Cancel what of a batch has not gone out, as DELETE /v1/batches/<id> does."""
    rt = runtime()
    found = _found(rt.batches.get, "batch", batch_id)
    outcome, _ = cancel_batch(batch_id, store=rt.batches, notifications=rt.store)
    if outcome == "missing":
        abort(404, "no such batch (or it expired)")
    if outcome == "done":
        abort(409, "the batch is done: nothing is left to cancel")
    _audit("cancel_batch", batch_id, client=found.client)
    return redirect(url_for("console.batch", batch_id=batch_id), 303)


# -- suppressions


def _client_of_form() -> str:
    client = request.form.get("client", "")
    if client not in _client_names():
        abort(400, "client: not a client of NOTIFIER_API_KEYS")
    return client


@bp.get("/suppressions")
def suppressions() -> str:
    rt = runtime()
    names = _client_names()
    client = _choice("client", names) or (names[0] if names else None)
    cursor = request.args.get("cursor", "0")
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 20 and int(cursor) < 2**64):
        abort(400, "cursor: the next of an earlier page")
    searched = _sealed_arg()
    entries, after = [], 0
    if client is not None and searched is not None:
        entry = rt.suppressions.get(client, searched)
        entries = [entry] if entry else []
    elif client is not None:
        entries, after = rt.suppressions.page(client, int(cursor), 100)
    seal = partial(console().sealed.seal, session=_session_now())
    return _page(
        "suppressions.html", client=client, clients=names, entries=entries, after=after,
        searched=None if searched is None else mask_recipient(searched), seal=seal,
    )  # fmt: skip


@bp.post("/suppressions/search")
def search_suppression() -> Response:
    client = _client_of_form()
    address = (request.form.get("address") or "").strip()
    kept = {"client": client}
    if address:
        kept["q"] = console().sealed.seal(address, _session_now())
    return redirect(f"{url_for('console.suppressions')}?{urlencode(kept)}", 303)


@bp.post("/suppressions/add")
def add_suppression() -> Response:
    """Suppress an address for a client (reason manual), as POST /v1/suppressions does."""
    client = _client_of_form()
    try:
        body = SuppressionRequest.model_validate({"address": request.form.get("address", "")})
    except ValidationError:
        abort(400, "address: not a mail address")
    operator = _session_now().operator
    entry, _ = runtime().suppressions.add(client, body.address, body.reason, by=operator)
    _audit("add_suppression", mask_recipient(entry.address), client=client)
    return redirect(f"{url_for('console.suppressions')}?{urlencode({'client': client})}", 303)


@bp.post("/suppressions/remove")
def remove_suppression() -> Response:
    """Take an address off a client's list (sent sealed: the page never holds it in the clear)."""
    client = _client_of_form()
    address = console().sealed.open(request.form.get("target", ""), _session_now())
    if address is None or not runtime().suppressions.remove(client, address):
        abort(404, "not on the suppression list")
    _audit("remove_suppression", mask_recipient(address), client=client)
    return redirect(f"{url_for('console.suppressions')}?{urlencode({'client': client})}", 303)

"""``/v1/suppressions``: a client's suppression list, the addresses its mail is not sent to.

An address is the rest of the path after ``/v1/suppressions/``, percent-encoded as one path
segment (``quote(address, safe="")``, ``encodeURIComponent``): any address that can be added
can be read and removed, though it start with ``/``, or hold ``//``, ``./``, ``%``, ``?`` or
``#`` (all valid in a local part). The server decodes it, so ``/`` and ``@`` may also be sent
as they are.
"""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify, request
from flask.blueprints import BlueprintSetupState
from pydantic import TypeAdapter, ValidationError
from werkzeug.routing import BaseConverter

from notifier.api.auth import rate_limited, requires
from notifier.api.body import parse
from notifier.api.openapi import operation
from notifier.errors import FieldError, NotFound, Unprocessable
from notifier.runtime import runtime
from notifier.schemas import Address, Suppression, SuppressionPage, SuppressionRequest, not_above
from notifier.stores.suppressions import Entry

bp = Blueprint("suppressions", __name__)


class AddressConverter(BaseConverter):
    """The whole rest of the path, whatever it holds. Werkzeug's ``path`` refuses a leading
    ``/`` and merges ``//`` (a redirect to another address), which addresses may hold."""

    regex = ".+"
    part_isolating = False  # spans "/": matched against the rest of the path at once


def _converter(state: BlueprintSetupState) -> None:
    state.app.url_map.converters["address"] = AddressConverter


bp.record_once(_converter)  # before the rules below, which name it
ADDRESS: TypeAdapter[str] = TypeAdapter(Address)


def _listed(address: str) -> str:
    """``address`` as an added one was kept (an IDNA domain in ASCII, a display name dropped);
    as given when it is no address at all, and so on no list."""
    try:
        return ADDRESS.validate_python(address)
    except ValidationError:
        return address


PAGE = 100
# Redis's scan cursors: unsigned 64-bit integers.
CURSOR = {
    "name": "cursor",
    "schema": {"type": "string", "pattern": f"^(?:[0-9]{{1,19}}|{not_above(str(2**64 - 1))})$"},
}


def _shown(entry: Entry) -> dict[str, str]:
    return Suppression(
        address=entry.address, reason=entry.reason, created_at=entry.created_at
    ).model_dump()


@bp.get("/suppressions")
@operation((200, SuppressionPage), errors=(422, 503), query=(CURSOR,))
@requires("mail")
def list_suppressions() -> Response:
    """A page of the client's suppression list."""
    cursor = request.args.get("cursor", "0")
    if not (cursor.isascii() and cursor.isdigit() and len(cursor) <= 20 and int(cursor) < 2**64):
        raise Unprocessable(
            "cursor is not a cursor",
            errors=[FieldError(("query", "cursor"), "the next of an earlier page")],
        )
    entries, after = runtime().suppressions.page(g.client.client, int(cursor), PAGE)
    return jsonify({"items": [_shown(e) for e in entries], "next": str(after) if after else None})


@bp.post("/suppressions")
@operation((200, Suppression), body=SuppressionRequest, errors=(503,))
@requires("mail")
@rate_limited
def add_suppression() -> Response:
    """Stop mail to an address; the entry as it is now (adding one twice is harmless). Through
    the client's rate, as a send is: each entry is kept until it is removed, and a client
    adding them without end would fill the Redis every client shares."""
    body = parse(SuppressionRequest)
    entry, _ = runtime().suppressions.add(g.client.client, body.address, body.reason)
    return jsonify(_shown(entry))


@bp.get("/suppressions/<address:address>")
@operation((200, Suppression), errors=(404, 503))
@requires("mail")
def show_suppression(address: str) -> Response:
    """Whether an address is on the client's suppression list, and why."""
    entry = runtime().suppressions.get(g.client.client, _listed(address))
    if entry is None:
        raise NotFound(f"{address!r} is not on the suppression list")
    return jsonify(_shown(entry))


@bp.delete("/suppressions/<address:address>")
@operation((200, Suppression), errors=(404, 503))
@requires("mail")
def remove_suppression(address: str) -> Response:
    """Send to an address again: take it off the client's suppression list."""
    rt = runtime()
    listed = _listed(address)
    entry = rt.suppressions.get(g.client.client, listed)
    if entry is None or not rt.suppressions.remove(g.client.client, listed):
        raise NotFound(f"{address!r} is not on the suppression list")
    return jsonify(_shown(entry))

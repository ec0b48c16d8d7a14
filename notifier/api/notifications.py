"""``GET`` and ``DELETE /v1/notifications/<id>``: a client sees and cancels only its own."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from notifier.api.auth import requires
from notifier.api.openapi import operation
from notifier.api.responses import own
from notifier.errors import Conflict
from notifier.runtime import runtime
from notifier.schemas import Notification

bp = Blueprint("notifications", __name__)


def _own(notification_id: str) -> Notification:
    return own(runtime().store.get, "notification", notification_id)


@bp.get("/notifications/<id>")
@operation((200, Notification), errors=(404, 503))
@requires()
def show(id: str) -> Response:
    """The status of a notification."""
    return jsonify(_own(id).public())


@bp.delete("/notifications/<id>")
@operation((200, Notification), errors=(404, 409, 503))
@requires()
def cancel(id: str) -> Response:
    """Cancel a scheduled notification (409 once it is past that)."""
    record = _own(id)
    before = runtime().store.cancel(id)
    if before != "scheduled":
        raise Conflict(
            f"notification is {before or record.status}; only a scheduled one can be cancelled"
        )
    return jsonify(_own(id).public())

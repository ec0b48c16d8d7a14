"""``GET`` and ``DELETE /v1/notifications/<id>``: a client sees and cancels only its own."""

from __future__ import annotations

from flask import Blueprint, Response, g, jsonify

from notifier.api.auth import requires
from notifier.errors import Conflict, NotFound
from notifier.runtime import runtime
from notifier.stores.notifications import Notification

bp = Blueprint("notifications", __name__)


def _own(notification_id: str) -> Notification:
    record = runtime().store.get(notification_id) if len(notification_id) <= 64 else None
    # Another client's notification is as unknown as one that never was.
    if record is None or record.client != g.client.client:
        raise NotFound(f"no notification {notification_id!r}")
    return record


@bp.get("/notifications/<notification_id>")
@requires()
def show(notification_id: str) -> Response:
    """The status of one notification."""
    return jsonify(_own(notification_id).public())


@bp.delete("/notifications/<notification_id>")
@requires()
def cancel(notification_id: str) -> Response:
    """Cancel a notification that is still ``scheduled``."""
    record = _own(notification_id)
    before = runtime().store.cancel(notification_id)
    if before != "scheduled":
        raise Conflict(
            f"notification is {before or record.status}; only a scheduled one can be cancelled"
        )
    return jsonify(_own(notification_id).public())

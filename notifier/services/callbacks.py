"""Status callbacks: POST a notification's status to its client's own service, signed.

A callback is queued in the same Redis step that changes the status (see the store), as a
``send_callback`` task on the ``callbacks`` lane carrying the event: the notification, the
status it reached, a webhook id kept for every retry, and the time. What is POSTed is the
status record as ``GET /v1/notifications/<id>`` shows it, with the event's status (the record
may have moved on by the time a retry goes out).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Literal

import requests

from notifier.deadline import DeadlineAdapter, session
from notifier.settings import ApiClient
from notifier.stores.batches import BatchStore
from notifier.stores.notifications import NotificationStore
from notifier.webhooks import (
    DestinationRefused,
    PublicOnlyAdapter,
    check_url,
    secret_key,
    signed_headers,
)

log = logging.getLogger(__name__)
TIMEOUT = 5.0  # seconds for one POST in all, however slowly the receiver answers
RETRY_FOR = 24 * 3600  # a callback is retried this long after its event, then given up
# A finished batch's event names the batch so: "batch:<id>", status "done".
BATCH_EVENT = "batch:"


@dataclass(frozen=True)
class Event:
    """One status a notification reached, to be told to its client."""

    notification_id: str
    status: str
    webhook_id: str
    timestamp: int


class CallbackSender:
    """POSTs callbacks over kept-alive connections, shared by a worker's threads.

    In production only https URLs of public addresses are called (checked before sending, and
    on the connected socket).
    """

    def __init__(self, *, production: bool, max_connections: int) -> None:
        self._production = production
        adapter = PublicOnlyAdapter if production else DeadlineAdapter
        self._session = session(adapter(total=TIMEOUT, max_connections=max_connections))

    def post(self, url: str, secret: str, event: Event, body: bytes) -> int:
        """POST once; the HTTP status. DestinationRefused, or a requests error, otherwise."""
        check_url(url, production=self._production)
        headers = signed_headers(secret_key(secret), event.webhook_id, event.timestamp, body)
        response = self._session.post(url, data=body, headers=headers, allow_redirects=False)
        response.close()
        return response.status_code

    def close(self) -> None:
        self._session.close()


def subject(
    event: Event, *, store: NotificationStore, batches: BatchStore
) -> tuple[str, dict[str, Any]] | None:
    """Whose the event is and what to POST: the notification's record with the event's status,
    or a finished batch's record, as the API shows them; None once expired."""
    if event.notification_id.startswith(BATCH_EVENT):
        batch = batches.get(event.notification_id.removeprefix(BATCH_EVENT))
        return None if batch is None else (batch.client, batch.model_dump())
    record = store.get(event.notification_id)
    return None if record is None else (record.client, {**record.public(), "status": event.status})


def deliver_callback(
    event: Event,
    *,
    store: NotificationStore,
    body: dict[str, Any] | None,
    client: ApiClient | None,
    sender: CallbackSender,
) -> Literal["sent", "retry", "dropped"]:
    """Make one attempt at a callback: ``sent`` (a 2xx), ``retry``, or ``dropped`` for good."""
    if body is None or client is None or client.callback_url is None:
        return "dropped"  # expired, or the client's callback was removed since
    assert client.callback_secret is not None  # the settings require the pair
    try:
        status = sender.post(
            client.callback_url,
            client.callback_secret.get_secret_value(),
            event,
            json.dumps(body).encode(),
        )
    except DestinationRefused as e:
        log.error("%s: callback to %s refused: %s", event.notification_id, client.client, e)
        store.count("callbacks:failed")
        return "dropped"
    except requests.RequestException as e:
        log.warning("%s: callback failed: %s", event.notification_id, type(e).__name__)
        store.count("callbacks:retrying")
        return "retry"
    if 200 <= status < 300:
        log.info("%s: callback %s answered %d", event.notification_id, event.status, status)
        store.count("callbacks:sent")
        return "sent"
    log.warning("%s: callback answered %d", event.notification_id, status)
    store.count("callbacks:retrying")
    return "retry"

"""``POST /v1/receipts/<provider>``: delivery receipts, authenticated by the provider's signature.

No API key: Twilio signs each callback with the account's auth token over the URL it called
and the form it sent (``X-Twilio-Signature``), checked with the SDK's own ``RequestValidator``
against ``NOTIFIER_PUBLIC_URL`` (the URL as Twilio saw it, whatever proxy is in between).
"""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from twilio.request_validator import RequestValidator

from notifier.api.openapi import operation
from notifier.errors import Forbidden
from notifier.runtime import runtime
from notifier.schemas import ReceiptAck
from notifier.services.receipts import twilio_receipt

bp = Blueprint("receipts", __name__)


@bp.post("/receipts/twilio")
@operation((200, ReceiptAck), errors=(403,))
def twilio() -> Response:
    """Twilio's status callback (form-encoded, signed); 200 for any message, ours or not."""
    rt = runtime()
    settings = rt.settings
    token = settings.twilio_auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if settings.public_url is None or token is None or not signature:
        raise Forbidden("receipts need NOTIFIER_PUBLIC_URL and a signed request")
    query = request.query_string.decode()
    url = settings.public_url.rstrip("/") + request.path + (f"?{query}" if query else "")
    form = request.form.to_dict()
    if not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        raise Forbidden("the X-Twilio-Signature does not match")
    return jsonify(ReceiptAck(outcome=twilio_receipt(form, store=rt.store)).model_dump())

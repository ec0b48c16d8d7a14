"""``POST /v1/receipts/<provider>``: delivery receipts and mail events, authenticated by the
provider.

No API key: Twilio signs each callback with the account's auth token over the URL it called
and the form it sent (``X-Twilio-Signature``), checked with the SDK's own ``RequestValidator``
against ``NOTIFIER_PUBLIC_URL`` (the URL as Twilio saw it, whatever proxy is in between).
Aliyun and Tencent sign nothing: the URL set in their console carries a secret ``token``
(``NOTIFIER_ALIYUN_RECEIPT_TOKEN``, ``NOTIFIER_TENCENT_RECEIPT_TOKEN``), the only proof.
SES's events come through Amazon SNS, each message signed by AWS (:mod:`notifier.sns`: its
topic must be one of ``NOTIFIER_SES_TOPIC_ARNS``); SendGrid signs each post of its Event Webhook
(:mod:`notifier.sendgrid_webhook`, ``NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY``).
Each route checks its proof before anything of the body can be refused: a caller without it
gets 403, never a 400 or 413 that would tell it the route reads what it sends.
"""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Response, jsonify, request
from twilio.request_validator import RequestValidator
from werkzeug.exceptions import RequestEntityTooLarge

from notifier.api.body import objects, signed, whole_body
from notifier.api.openapi import operation
from notifier.errors import Forbidden
from notifier.providers.aliyun import AliyunSettings
from notifier.providers.tencent import TencentSettings
from notifier.providers.twilio import TwilioSettings
from notifier.runtime import runtime
from notifier.schemas import AliyunReceiptAck, ReceiptAck, ReceiptPush, TencentReceiptAck
from notifier.sendgrid_webhook import SIGNATURE, TIMESTAMP
from notifier.services.bounces import take_bounce
from notifier.services.mail_events import sendgrid_events, ses_events
from notifier.services.receipts import aliyun_receipts, tencent_receipts, twilio_receipt
from notifier.sns import SUBSCRIPTION_CONFIRMATION, UNSUBSCRIBE_CONFIRMATION
from notifier.stores.notifications import NotificationStore

bp = Blueprint("receipts", __name__)
log = logging.getLogger(__name__)


@bp.post("/receipts/twilio")
@operation((200, ReceiptAck), errors=(403, 503))
def twilio() -> Response:
    """Twilio's status callback (form-encoded, signed); 200 for any message, ours or not."""
    rt = runtime()
    settings = rt.settings
    token = settings.vendor(TwilioSettings).auth_token
    signature = request.headers.get("X-Twilio-Signature", "")
    if settings.public_url is None or token is None or not signature:
        raise Forbidden("receipts need NOTIFIER_PUBLIC_URL and a signed request")
    query = request.query_string.decode()
    url = settings.public_url.rstrip("/") + request.path + (f"?{query}" if query else "")
    try:
        form = request.form.to_dict()
    except RequestEntityTooLarge:
        # Twilio's callbacks are small: a signature over a body past the limit cannot be
        # checked, and a caller not shown to be Twilio learns nothing more than a 403.
        raise Forbidden("the X-Twilio-Signature cannot be checked: the body is too large") from None
    if not RequestValidator(token.get_secret_value()).validate(url, form, signature):
        raise Forbidden("the X-Twilio-Signature does not match")
    return jsonify(ReceiptAck(outcome=twilio_receipt(form, store=rt.store)).model_dump())


def _store(provider: str) -> NotificationStore:
    """The store, once the URL's ``token`` is ``provider``'s; 403 otherwise, or when none is set."""
    rt = runtime()
    settings = rt.settings
    configured = {
        "aliyun": settings.vendor(AliyunSettings).receipt_token,
        "tencent": settings.vendor(TencentSettings).receipt_token,
        "bounce": settings.bounce_token,
    }[provider]
    given = request.args.get("token", "").encode()
    # Constant time: how much of a guess was right must not show in how long the answer took.
    if configured is None or not hmac.compare_digest(given, configured.get_secret_value().encode()):
        setting = (
            "NOTIFIER_BOUNCE_TOKEN"
            if provider == "bounce"
            else (f"NOTIFIER_{provider.upper()}_RECEIPT_TOKEN")
        )
        raise Forbidden(f"the URL's token does not match {setting}")
    return rt.store


@bp.get("/receipts/aliyun")
@operation((200, AliyunReceiptAck), errors=(403,))
def aliyun_check() -> Response:
    """Aliyun's connectivity check of the receipt URL, made when it is set in the console."""
    _store("aliyun")
    return jsonify(AliyunReceiptAck(code=0, msg="成功").model_dump())


@bp.post("/receipts/aliyun")
@operation((200, AliyunReceiptAck), body=ReceiptPush, body_errors=(400, 413), errors=(403, 503))
def aliyun() -> Response:
    """Aliyun's SmsReport push (a JSON array, token in the URL); 200 for any message."""
    store = _store("aliyun")  # the token before the body: a stranger gets 403, not 400 or 413
    aliyun_receipts(objects(), store=store)
    # Aliyun reads only the numeric code; the text is the one its documentation shows.
    return jsonify(AliyunReceiptAck(code=0, msg="接收成功").model_dump())


@bp.post("/receipts/tencent")
@operation((200, TencentReceiptAck), body=ReceiptPush, body_errors=(400, 413), errors=(403, 503))
def tencent() -> Response:
    """Tencent's SMS status callback (a JSON array, token in the URL); 200 for any message."""
    store = _store("tencent")  # the token before the body, as for Aliyun
    tencent_receipts(objects(), store=store)
    return jsonify(TencentReceiptAck(result=0, errmsg="OK").model_dump())


@bp.post("/bounces")
@operation((200, ReceiptAck), errors=(403, 413, 503))
def bounce() -> Response:
    """A message the bounce domain received, as the MTA pipes it (token in the URL); a DSN
    of ours moves its notification. 200 for any message, so the MTA does not send it again;
    503 with Retry-After for a DSN of ours whose send is not recorded yet, so it does."""
    store = _store("bounce")
    rt = runtime()
    if rt.bounces is None:
        outcome = "ignored"  # NOTIFIER_BOUNCE_DOMAIN unset: no mail was sent for bounces here
    else:
        outcome = take_bounce(
            whole_body(), bounces=rt.bounces, store=store, suppressions=rt.suppressions,
            guard=rt.guard,
        )  # fmt: skip
    return jsonify(ReceiptAck(outcome=outcome).model_dump())


@bp.post("/receipts/ses")
@operation((200, ReceiptAck), errors=(403, 503))
def ses() -> Response:
    """Amazon SNS's messages of SES's events (either form), of a topic of
    ``NOTIFIER_SES_TOPIC_ARNS``; a confirmation of such a topic's subscription is confirmed.
    200 for any event of ours, or of a message unknown here."""
    rt = runtime()
    verifier = rt.sns
    if verifier is None:
        raise Forbidden("no SNS topic is ours: NOTIFIER_SES_TOPIC_ARNS is not set")
    message = verifier.receive(signed("the SNS signature"), dict(request.headers.items()))
    if message.type == SUBSCRIPTION_CONFIRMATION:
        outcome = "confirmed"
    elif message.type == UNSUBSCRIBE_CONFIRMATION:
        # Someone removed the subscription: SES's events for this topic no longer come here.
        log.warning("the SNS subscription to %s was removed; its events stop", message.topic_arn)
        outcome = "ignored"
    else:
        outcome = rt.mail_events.apply(ses_events(message.message))
    return jsonify(ReceiptAck(outcome=outcome).model_dump())


@bp.post("/receipts/sendgrid")
@operation((200, ReceiptAck), body=ReceiptPush, body_errors=(400,), errors=(403, 503))
def sendgrid() -> Response:
    """SendGrid's Event Webhook (a JSON array of events), signed with the account's key; 200
    for any event of ours, or of a message unknown here."""
    rt = runtime()
    verifier = rt.sendgrid_events
    if verifier is None:
        raise Forbidden(
            f"the {SIGNATURE} cannot be checked: no NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY"
        )
    verifier.verify(
        signed(f"the {SIGNATURE}"),
        signature=request.headers.get(SIGNATURE, ""),
        timestamp=request.headers.get(TIMESTAMP, ""),
    )
    outcome = rt.mail_events.apply(sendgrid_events(objects()))
    return jsonify(ReceiptAck(outcome=outcome).model_dump())

"""A local HTTP server that speaks Twilio's Messages REST format, for the real twilio SDK."""

from __future__ import annotations

import base64
import re
import time
import uuid
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests import Response
from twilio.request_validator import RequestValidator

from tests.support.peers.http_peer import JsonPeer, Reply, Request

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM = "+15005550006"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


def missing(form: dict[str, str]) -> tuple[int, str] | None:
    """Twilio's refusal (its error code and message, with HTTP 400) of a create call that lacks
    a required parameter: ``To`` (21604); a sender, ``From`` or ``MessagingServiceSid`` or both,
    the service then sending from that ``From`` of its pool (21603); and ``Body`` (21602: this
    fake sends no media). As Twilio's error pages document them."""
    if not form.get("To"):
        return 21604, "A 'To' phone number is required."
    if not (form.get("From") or form.get("MessagingServiceSid")):
        return 21603, "A 'From' or 'MessagingServiceSid' parameter is required to send a message"
    if not form.get("Body"):
        return 21602, "Message body is required."
    return None


class FakeTwilio(JsonPeer[tuple[int, int]]):
    """Accepts ``POST /2010-04-01/Accounts/<sid>/Messages.json`` with the account's Basic auth
    and the parameters Twilio requires (:func:`missing`); answers planned errors (HTTP status,
    Twilio code) first, by the number sent to."""

    def __init__(self) -> None:
        super().__init__()
        self.received: list[dict[str, str]] = []
        self.arrivals: dict[str, float] = {}  # number -> when its text came
        self.status_callbacks: dict[str, str] = {}  # message SID -> its URL

    def answer(self, request: Request) -> Reply:
        match = _PATH.match(request.path)
        expected = "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
        if request.method != "POST" or match is None:
            return Reply(404, {"code": 20404, "message": "not found", "status": 404})
        if request.headers.get("authorization") != expected:
            return Reply(401, {"code": 20003, "message": "Authenticate", "status": 401})
        form = {k: v[0] for k, v in parse_qs(request.body.decode()).items()}
        refused = missing(form)
        if refused is not None:
            code, message = refused
            return Reply(400, {
                "code": code, "message": message,
                "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": 400,
            })  # fmt: skip
        planned = self.planned(form.get("To", ""))
        if planned is not None:
            status, code = planned
            return Reply(status, {
                "code": code,
                "message": f"planned failure {code}",
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            })  # fmt: skip
        return Reply(201, self._created(match["sid"], form))

    def receipt(
        self,
        sid: str,
        status: str,
        *,
        deliver_to: str,
        error_code: str | None = None,
        tamper: bool = False,
    ) -> Response:
        """POST a status callback for message ``sid`` as Twilio does: to the URL the message was
        created with, signed over that URL and the form with the auth token. ``deliver_to`` is
        where that URL really leads (the proxy in front of the service, here the service itself).
        """
        url = self.status_callbacks[sid]
        form = {
            "AccountSid": ACCOUNT_SID, "MessageSid": sid, "SmsSid": sid, "MessageStatus": status,
            "SmsStatus": status, "ApiVersion": "2010-04-01",
        }  # fmt: skip
        if error_code is not None:
            form["ErrorCode"] = error_code
        signature = RequestValidator(AUTH_TOKEN).compute_signature(url, form)
        if tamper:
            form["MessageStatus"] = "delivered" if status != "delivered" else "undelivered"
        path = urlsplit(url).path
        return requests.post(
            deliver_to.rstrip("/") + path,
            data=form,
            headers={"X-Twilio-Signature": signature},
            timeout=10,
        )

    def texts_to(self, phone: str) -> list[str]:
        with self.lock:
            return [m["Body"] for m in self.received if m["To"] == phone]

    def _created(self, sid: str, form: dict[str, str]) -> dict[str, Any]:
        """The message Twilio made, as its API answers it; the text recorded as arrived."""
        with self.lock:
            self.received.append(form)
            self.arrivals[form.get("To", "")] = time.time()
        message_sid = "SM" + uuid.uuid4().hex
        if form.get("StatusCallback"):
            with self.lock:
                self.status_callbacks[message_sid] = form["StatusCallback"]
        return {
            "sid": message_sid,
            "account_sid": sid,
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "num_segments": "1",
            "direction": "outbound-api",
            "api_version": "2010-04-01",
            "date_created": "Sun, 22 Nov 2026 02:00:00 +0000",
            "date_updated": "Sun, 22 Nov 2026 02:00:00 +0000",
            "date_sent": None,
            "error_code": None,
            "error_message": None,
            "price": None,
            "price_unit": "USD",
            "uri": f"/2010-04-01/Accounts/{sid}/Messages/{message_sid}.json",
            "subresource_uris": {},
        }

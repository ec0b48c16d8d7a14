"""A local HTTP server that speaks Twilio's Messages REST format, for the real twilio SDK."""

from __future__ import annotations

import base64
import json
import re
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from requests import Response
from twilio.request_validator import RequestValidator

ACCOUNT_SID = "AC" + "0" * 32
AUTH_TOKEN = "test-auth-token"
FROM = "+15005550006"
_PATH = re.compile(r"^/2010-04-01/Accounts/(?P<sid>AC\w+)/Messages\.json$")


@dataclass
class FakeTwilio:
    """Accepts ``POST /2010-04-01/Accounts/<sid>/Messages.json``; answers planned errors first."""

    received: list[dict[str, str]] = field(default_factory=list)
    # By the number sent to: (HTTP status, Twilio code) to answer first.
    plans: dict[str, deque[tuple[int, int]]] = field(default_factory=dict)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)
    delay: float = 0.0  # seconds before answering: Twilio is 200 ms away from most places
    connections: int = 0  # TCP connections accepted (the SDK keeps them alive)
    in_flight: int = 0  # requests being answered right now
    peak_in_flight: int = 0
    arrivals: dict[str, float] = field(default_factory=dict)  # number -> when its text came
    status_callbacks: dict[str, str] = field(default_factory=dict)  # message SID -> its URL

    def __post_init__(self) -> None:
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> FakeTwilio:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def plan(self, phone: str, *answers: tuple[int, int]) -> None:
        """Answer the next sends to ``phone`` with these (status, Twilio code), then succeed."""
        with self.lock:
            self.plans.setdefault(phone, deque()).extend(answers)

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

    def _answer(self, sid: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.requests += 1
            plan = self.plans.get(form.get("To", ""))
            planned = plan.popleft() if plan else None
            if planned is None:
                self.received.append(form)
                self.arrivals[form.get("To", "")] = time.time()
        if planned is not None:
            status, code = planned
            return status, {
                "code": code,
                "message": f"planned failure {code}",
                "more_info": f"https://www.twilio.com/docs/errors/{code}",
                "status": status,
            }
        message_sid = "SM" + uuid.uuid4().hex
        if form.get("StatusCallback"):
            with self.lock:
                self.status_callbacks[message_sid] = form["StatusCallback"]
        return 201, {
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as Twilio's API

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def setup(self) -> None:
                super().setup()
                with fake.lock:
                    fake.connections += 1

            def do_POST(self) -> None:
                with fake.lock:
                    fake.in_flight += 1
                    fake.peak_in_flight = max(fake.peak_in_flight, fake.in_flight)
                try:
                    self._answer_post()
                finally:
                    with fake.lock:
                        fake.in_flight -= 1

            def _answer_post(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length).decode()
                match = _PATH.match(self.path)
                expected = (
                    "Basic " + base64.b64encode(f"{ACCOUNT_SID}:{AUTH_TOKEN}".encode()).decode()
                )
                if match is None:
                    status, body = 404, {"code": 20404, "message": "not found", "status": 404}
                elif self.headers.get("Authorization") != expected:
                    status, body = 401, {"code": 20003, "message": "Authenticate", "status": 401}
                else:
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    status, body = fake._answer(match["sid"], form)
                if fake.delay:
                    time.sleep(fake.delay)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

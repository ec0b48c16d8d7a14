"""What the vendor test peers share: an HTTP/1.1 keep-alive server that counts connections and
requests in flight, answers after a latency, plans answers by phone number; and a server that
never answers."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Generic, Protocol, Self, TypeVar

A = TypeVar("A")


class PeerServer(ThreadingHTTPServer):
    """``ThreadingHTTPServer`` with a vendor's front door: a listen backlog of 1,024 where
    socketserver's is 5. With 5, a burst of new connections (a worker's pool filling as a
    2,000-row batch starts, on a loaded machine whose accept thread waits its turn) overflows
    the queue, the kernel drops their SYNs, and a send waits the 1 s and 3 s SYN retries, past
    a 5 s provider deadline: it fails over (a full run's batch saw 9 of its rows go to the
    console instead of the Twilio peer). A limit of the peer, which no vendor has. A thread a
    request, never waited for at exit."""

    request_queue_size = 1024
    daemon_threads = True

    def serve(self) -> None:
        """Answer from a thread of its own, which looks for a shutdown every 50 ms."""
        threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()


class Reply:
    """What a peer answers: a status, a JSON body (None: no body) and the exact
    ``Content-Type``, and any other ``headers``."""

    def __init__(
        self,
        status: int,
        body: dict[str, Any] | None,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status, self.body, self.content_type = status, body, content_type
        self.headers = headers or {}


@dataclass(frozen=True)
class Answer:
    """A planned refusal: the HTTP status, the vendor's error code and its message."""

    status: int
    code: str
    message: str = "planned"


class Request:
    """One request as the peer read it off the wire."""

    def __init__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> None:
        # Header names lower-cased: HTTP's are case-insensitive, signatures use lower case.
        self.method, self.path, self.headers, self.body = method, path, headers, body


class PeerHandler(BaseHTTPRequestHandler):
    """A test peer's request handler: quiet, and its answers not held back by Nagle.

    http.server writes an answer in two sends (its head, then its body); with Nagle's algorithm
    on, the second waits for the client's ACK of the first, which Linux delays by up to 40 ms:
    every answer came 40 ms late, a vendor 50 ms away answered in 90. A vendor's server sends
    its answer at once."""

    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass


class JsonPeer(Generic[A]):
    """A ThreadingHTTPServer on 127.0.0.1 speaking HTTP/1.1 with keep-alive.

    Subclasses implement :meth:`answer`. ``connections`` counts the TCP connections accepted,
    ``requests`` the requests read, ``in_flight`` (and its ``peak_in_flight``) those being
    answered; ``delay`` is the seconds each answer waits (a vendor far away); ``plan`` queues
    answers of type ``A`` for a recipient.
    """

    def __init__(self, port: int = 0) -> None:
        self.lock = threading.Lock()
        self.connections = 0
        self.requests = 0
        self.in_flight = 0
        self.peak_in_flight = 0
        self.delay = 0.0
        self._plans: dict[str, deque[A]] = {}
        self.server = PeerServer(("127.0.0.1", port), self._handler())

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> Self:
        self.server.serve()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def plan(self, to: str, *answers: A) -> None:
        """Answer the next sends to ``to`` (a number in E.164, a mail address) with these, in
        order, then succeed."""
        with self.lock:
            self._plans.setdefault(to, deque()).extend(answers)

    def planned(self, to: str) -> A | None:
        """The next planned answer for ``to``, taken off the plan; None to succeed."""
        with self.lock:
            plan = self._plans.get(to)
            return plan.popleft() if plan else None

    def answer(self, request: Request) -> Reply:
        raise NotImplementedError

    def connected(self) -> None:
        """A TCP connection was accepted."""
        with self.lock:
            self.connections += 1

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(PeerHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                peer.connected()

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = self.rfile.read(length)
                with peer.lock:
                    peer.requests += 1
                    peer.in_flight += 1
                    peer.peak_in_flight = max(peer.peak_in_flight, peer.in_flight)
                try:
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    reply = peer.answer(Request(self.command, self.path, headers, body))
                    if peer.delay:
                        time.sleep(peer.delay)
                finally:
                    with peer.lock:
                        peer.in_flight -= 1
                data = (
                    b""
                    if reply.body is None
                    else json.dumps(reply.body, ensure_ascii=False).encode()
                )
                self.send_response(reply.status)
                if reply.body is not None:
                    self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(data)))
                # A client that went away meanwhile (a killed worker) is not the peer's error.
                with contextlib.suppress(ConnectionError):
                    self.end_headers()
                    self.wfile.write(data)

            do_GET = do_POST = _serve

        return Handler


class Taken(Protocol):
    """A mail a mail provider's stand-in took."""

    @property
    def recipients(self) -> list[str]: ...


T = TypeVar("T", bound=Taken)


class MailPeer(JsonPeer[Answer], Generic[T]):
    """A mail provider's API (SES, SendGrid): ``sent`` holds the mails it took."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[T] = []

    def to(self, address: str) -> list[T]:
        """The mails taken for ``address``."""
        with self.lock:
            return [s for s in self.sent if address in s.recipients]


@contextlib.contextmanager
def silent_server() -> Iterator[str]:
    """A base URL whose server takes connections (in the kernel's backlog) and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        listener.close()


def send_captcha(sms: Any, to: str = "+8613800138000") -> str:
    """Send code 123456, valid 5 minutes, through a template vendor's adapter."""
    message_id: str = sms.send_captcha(
        to=to, code="123456", minutes=5, product="Acme", locale="zh-CN", purpose="login"
    )
    return message_id


# What a template-only SMS adapter takes beside its vendor's settings model.
ADAPTER_OPTIONS = ("timeout", "max_connections", "template_params")


def adapter_options(kw: dict[str, Any]) -> dict[str, Any]:
    """Take the adapter's own options out of ``kw`` (the rest is its settings); 2 s timeout."""
    return {"timeout": 2, **{name: kw.pop(name) for name in ADAPTER_OPTIONS if name in kw}}

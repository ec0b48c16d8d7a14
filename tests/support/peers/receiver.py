"""A caller's service that receives status callbacks: records each one, answers as planned.

Besides answering (planned statuses, then 200) it can misbehave as other people's servers do:
hang without a word until released, or trickle its answer (the status line, then a header byte
every ``trickle`` seconds). Either way a request ends when its client hangs up, and
``in_flight`` / ``peak_in_flight`` count the requests it holds at once: the peak as each request
arrives, of those whose client has not hung up (which a held or trickling answer notices only
at its next look, a tenth of a second or a trickle's pause later, on a busy machine later yet).
"""

from __future__ import annotations

import json
import select
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler

from tests.support.peers.http_peer import PeerHandler, PeerServer


@dataclass(frozen=True)
class Received:
    """One POST that reached the receiver."""

    headers: dict[str, str]
    body: bytes
    at: float


class CallbackReceiver:
    """An HTTP server on 127.0.0.1 (plain http: allowed outside production)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.received: list[Received] = []
        self.answers: deque[int] = deque()  # planned statuses, then 200
        # Planned statuses for the callbacks of one notification (by its ``reference``), which
        # no other callback in flight can take (``plan``); then ``answers``, then 200.
        self.planned: dict[str, deque[int]] = {}
        # Cleared, requests wait for it before they are answered (a receiver that hangs).
        self.released = threading.Event()
        self.released.set()
        # Set, requests are answered a byte every this many seconds (a receiver that trickles).
        self.trickle: float | None = None
        self.in_flight = 0
        self.peak_in_flight = 0
        self._held: set[socket.socket] = set()  # the connections of the requests it holds
        self._stopping = threading.Event()
        self.server = PeerServer(("127.0.0.1", 0), self._handler())
        self.server.serve()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self._stopping.set()
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def behave(self) -> None:
        """Answer at once again, and end the requests held or trickling."""
        self.trickle = None
        self.released.set()

    def plan(self, reference: str, statuses: list[int]) -> None:
        """Answer the callbacks that carry ``reference`` with ``statuses``, one each, first."""
        with self.lock:
            self.planned.setdefault(reference, deque()).extend(statuses)

    def _status(self, body: bytes) -> int:
        """The answer to a callback whose body is ``body`` (with ``lock`` held)."""
        try:
            reference = json.loads(body).get("reference")
        except (ValueError, AttributeError):
            reference = None
        planned = self.planned.get(reference) if isinstance(reference, str) else None
        if planned:
            return planned.popleft()
        return self.answers.popleft() if self.answers else 200

    def for_notification(self, notification_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if notification_id.encode() in r.body]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(PeerHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers), body, time.time()))
                    status = receiver._status(body)
                    receiver.in_flight += 1
                    receiver._held.add(self.connection)
                    at_once = sum(not _hung_up(held) for held in receiver._held)
                    receiver.peak_in_flight = max(receiver.peak_in_flight, at_once)
                try:
                    self._answer(status)
                except OSError:
                    self.close_connection = True  # the client hung up
                finally:
                    with receiver.lock:
                        receiver.in_flight -= 1
                        receiver._held.discard(self.connection)

            def _answer(self, status: int) -> None:
                every = receiver.trickle
                if every is not None:
                    self._trickle(every)
                    return
                if not self._held():
                    return
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def _held(self) -> bool:
                """Wait to be released; False if the client hung up first."""
                while not receiver.released.wait(0.1):
                    if self._client_left():
                        self.close_connection = True
                        return False
                return True

            def _trickle(self, every: float) -> None:
                self.close_connection = True
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self.wfile.flush()
                # The pace is this peer's behaviour; it ends with the client or a behave().
                while receiver.trickle is not None and not receiver._stopping.wait(every):
                    self.wfile.write(b"a")
                    self.wfile.flush()

            def _client_left(self) -> bool:
                return _hung_up(self.connection)

        return Handler


def _hung_up(sock: socket.socket) -> bool:
    """Whether the client of ``sock`` has closed its end (it sends nothing after its request)."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:  # reset, or closed
        return True

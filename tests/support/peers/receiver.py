"""A caller's service that receives status callbacks: records each one, answers as planned."""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


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
        # Cleared, requests wait for it before they are answered (a receiver that hangs).
        self.released = threading.Event()
        self.released.set()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/hook"

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()

    def for_notification(self, notification_id: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if notification_id.encode() in r.body]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with receiver.lock:
                    receiver.received.append(Received(dict(self.headers), body, time.time()))
                    status = receiver.answers.popleft() if receiver.answers else 200
                receiver.released.wait(timeout=60)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        return Handler

"""A gate in front of the stack's web server, for what an MTA pipes to it: it passes each request
on, or stands for a Notifier that cannot take it (an error answer, or nothing listening)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler
from typing import Self

import requests

from notifier.embedded import free_port
from tests.support.peers.http_peer import PeerHandler, PeerServer


class Gate:
    """An HTTP server on a port of its own that forwards to ``target`` while open.

    ``refuse(status)`` answers every request with ``status`` instead (``refused`` counts them);
    ``close()`` stops listening, so a client's connection is refused; ``open()`` undoes both.
    """

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.port = free_port()
        self.status: int | None = None
        self.refused = 0
        self.lock = threading.Lock()
        self.server: PeerServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Listen (again, on the same port) and forward."""
        self.server = PeerServer(("127.0.0.1", self.port), self._handler())
        self.server.serve()
        return self

    def stop(self) -> None:
        """Stop listening."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def refuse(self, status: int) -> None:
        """Answer every request with ``status`` until :meth:`open`."""
        with self.lock:
            self.status = status

    def close(self) -> None:
        """Listen no more until :meth:`open`: Notifier unreachable."""
        self.stop()

    def open(self) -> None:
        """Forward every request again."""
        with self.lock:
            self.status = None
        if self.server is None:
            self.start()

    def _refusal(self) -> int | None:
        with self.lock:
            if self.status is not None:
                self.refused += 1
            return self.status

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        gate = self

        class Handler(PeerHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                status = gate._refusal()
                if status is None:
                    forwarded = requests.post(
                        gate.target + self.path,
                        data=body,
                        headers={"Content-Type": self.headers.get("Content-Type", "")},
                        timeout=10,
                    )
                    status, data = forwarded.status_code, forwarded.content
                    kind = forwarded.headers.get("Content-Type", "")
                else:
                    data, kind = b"refused by the test's gate\n", "text/plain"
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        return Handler

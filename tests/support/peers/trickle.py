"""Peers that answer a byte at a time: a start, then one byte every so often, and no end.

Each read of their client gets a byte well inside any socket timeout, so only a deadline on the
whole call ends it. A trickle lasts ``lasts`` seconds at most, then the peer hangs up: a client
without a deadline gets an error after that long instead of hanging a test run.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from typing import Self


class _Server:
    """A TCP server on 127.0.0.1, a thread a connection."""

    def __init__(self, every: float, lasts: float) -> None:
        self.every = every
        self.lasts = lasts
        self.connections = 0
        self.lock = threading.Lock()
        self._stopping = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", 0))

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    def start(self) -> Self:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        self._listener.close()

    def _accept(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._listener.accept()
            except OSError:
                return
            with self.lock:
                self.connections += 1
            threading.Thread(target=self._serve_and_close, args=(conn,), daemon=True).start()

    def _serve_and_close(self, conn: socket.socket) -> None:
        with conn, contextlib.suppress(OSError):  # the client hung up
            self._serve(conn)

    def _serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def _trickle(self, conn: socket.socket, start: bytes) -> None:
        """``start``, then ``a`` every ``every`` seconds until the client or ``lasts`` ends it."""
        conn.sendall(start)
        end = time.monotonic() + self.lasts
        # The pace is the peer's behaviour, not a test waiting for something.
        while not self._stopping.wait(self.every) and time.monotonic() < end:
            conn.sendall(b"a")


class TricklingHttp(_Server):
    """Reads nothing, answers ``HTTP/1.1 200 OK`` and then a header a byte at a time."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _serve(self, conn: socket.socket) -> None:
        self._trickle(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ")


class TricklingSmtp(_Server):
    """An SMTP server that answers every command at once until ``trickling`` is set; from then
    on each reply, the greeting included, is ``250-`` and a byte at a time."""

    def __init__(self, every: float, lasts: float) -> None:
        super().__init__(every, lasts)
        self.trickling = threading.Event()
        self.mails = 0

    def _serve(self, conn: socket.socket) -> None:
        self._reply(conn, b"220 trickle ESMTP")
        in_data = False
        for line in conn.makefile("rb"):
            if in_data:
                if line == b".\r\n":
                    in_data = False
                    with self.lock:
                        self.mails += 1
                    self._reply(conn, b"250 queued")
                continue
            command = line[:4].upper()
            if command == b"QUIT":
                self._reply(conn, b"221 bye")
                return
            in_data = command == b"DATA"
            self._reply(conn, b"354 go on" if in_data else b"250 ok")

    def _reply(self, conn: socket.socket, text: bytes) -> None:
        if self.trickling.is_set():
            self._trickle(conn, b"250-")
            return
        conn.sendall(text + b"\r\n")

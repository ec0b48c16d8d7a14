"""A local Sentry: takes the SDK's envelopes (``POST /api/<project>/envelope/``), keeps events."""

from __future__ import annotations

import json
from typing import Any

from tests.support.peers.http_peer import JsonPeer, Reply, Request
from tests.support.peers.otlp import decoded

PROJECT = "42"
PUBLIC_KEY = "0123456789abcdef0123456789abcdef"


class SentryReceiver(JsonPeer[None]):
    """Sentry's ingestion endpoint, in memory: every item of type ``event`` it received."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []
        self.bodies: list[bytes] = []  # each envelope as it came, decompressed

    @property
    def dsn(self) -> str:
        return f"http://{PUBLIC_KEY}@{self.base_url.removeprefix('http://')}/{PROJECT}"

    def answer(self, request: Request) -> Reply:
        if request.path != f"/api/{PROJECT}/envelope/":
            return Reply(404, {})
        body = decoded(request.body, request.headers.get("content-encoding", ""))
        items = envelope_items(body)
        with self.lock:
            self.bodies.append(body)
            self.events += [payload for header, payload in items if header["type"] == "event"]
        return Reply(200, {})

    def received(self) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.events)


def envelope_items(body: bytes) -> list[tuple[dict[str, Any], Any]]:
    """The (header, payload) of each item of a Sentry envelope (its first line is its header)."""
    _, _, rest = body.partition(b"\n")
    items = []
    while rest.strip():
        line, _, rest = rest.partition(b"\n")
        header = json.loads(line)
        if "length" in header:
            payload, rest = rest[: header["length"]], rest[header["length"] + 1 :]
        else:
            payload, _, rest = rest.partition(b"\n")
        items.append((header, json.loads(payload) if header.get("type") == "event" else payload))
    return items

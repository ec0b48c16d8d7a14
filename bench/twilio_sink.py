"""The benchmark's Twilio: the Messages REST call over keep-alive HTTP/1.1, answered after a
latency, in its own process. Records when each text arrived in Redis (``bench:sms``: number ->
time) and counts connections (``bench:sms_connections``).

    python twilio_sink.py PORT REDIS_URL LATENCY_MS
"""

from __future__ import annotations

import sys
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.peers.http_peer import JsonPeer, Reply, Request


class TwilioSink(JsonPeer[None]):
    """Takes every text; what arrived, and the connections, are written to Redis."""

    def __init__(self, port: int, db: redis.Redis, latency: float) -> None:
        super().__init__(port)
        self.db = db
        self.delay = latency

    def connected(self) -> None:
        self.db.incr("bench:sms_connections")

    def answer(self, request: Request) -> Reply:
        to = parse_qs(request.body.decode())["To"][0]
        self.db.hset("bench:sms", to, time.time())
        return Reply(201, {"sid": "SM" + uuid.uuid4().hex, "status": "queued", "to": to})


def main() -> None:
    port, db, latency = int(sys.argv[1]), redis.Redis.from_url(sys.argv[2]), float(sys.argv[3])
    # A provider takes more than socketserver's 5 connections waiting to be accepted: with 5,
    # workers that start many sends at once (a backlog of captchas) overflow the queue, and the
    # kernel resets connections the sink never accepted (bench/README.md, issue #36).
    ThreadingHTTPServer.request_queue_size = 128
    sink = TwilioSink(port, db, latency / 1000)
    print("twilio ready", flush=True)
    sink.server.serve_forever()


if __name__ == "__main__":
    main()

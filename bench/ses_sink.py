"""The benchmark's Amazon SES: API v2 ``SendEmail`` over HTTPS and keep-alive HTTP/1.1, answered
after a latency, in its own process. Records when each mail arrived in Redis as the SMTP sink
does (``bench:arrivals``, ``bench:messages``, ``bench:connections``), and each ``MessageId``
with its recipient and notification (``bench:ses_ids``), for the events the benchmark signs.

It checks nothing: SES's own checks (the SigV4 signature, the request's shape, the raw MIME) are
the tests' local SES's (``tests/support/peers/ses.py``), which the tests hold to boto3. Here they
would spend the benchmark machine's CPU, where SES spends its own.

    python ses_sink.py PORT REDIS_URL LATENCY_MS TLS_CHAIN
"""

from __future__ import annotations

import json
import ssl
import sys
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path

import redis

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.peers.http_peer import JsonPeer, Reply, Request


class SesSink(JsonPeer[None]):
    """Takes every mail; what arrived, and the connections, are written to Redis."""

    def __init__(self, port: int, db: redis.Redis, latency: float) -> None:
        super().__init__(port)
        self.db = db
        self.delay = latency

    def connected(self) -> None:
        self.db.incr("bench:connections")

    def answer(self, request: Request) -> Reply:
        body = json.loads(request.body)
        to = body["Destination"]["ToAddresses"][0]
        tags = {t["Name"]: t["Value"] for t in body.get("EmailTags", [])}
        message_id = f"0102{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000"
        pipe = self.db.pipeline(transaction=False)
        pipe.hset("bench:arrivals", message_id, time.time())
        pipe.hset("bench:ses_ids", message_id, json.dumps([to, tags["notification_id"]]))
        pipe.incr("bench:messages")
        pipe.execute()
        return Reply(200, {"MessageId": message_id})


def main() -> None:
    port, db = int(sys.argv[1]), redis.Redis.from_url(sys.argv[2])
    latency, chain = float(sys.argv[3]), sys.argv[4]
    ThreadingHTTPServer.request_queue_size = 128  # as the Twilio sink's (twilio_sink.py)
    sink = SesSink(port, db, latency / 1000)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    sink.server.socket = context.wrap_socket(sink.server.socket, server_side=True)
    print("ses ready", flush=True)
    sink.server.serve_forever()


if __name__ == "__main__":
    main()

"""The benchmark's Amazon SES: API v2 ``SendEmail`` over HTTPS and keep-alive HTTP/1.1, answered
after a latency, in its own process. Records when each mail arrived in Redis as the SMTP sink
does (``bench:arrivals``, ``bench:messages``, ``bench:connections``), and each ``MessageId``
with its recipient and notification (``bench:ses_ids``), for the events the benchmark signs.

It checks nothing: SES's own checks (the SigV4 signature, the request's shape, the raw MIME) are
the tests' local SES's (``tests/support/peers/ses.py``), which the tests hold to boto3. Here they
would spend the benchmark machine's CPU, where SES spends its own. For the same reason it runs
on one asyncio loop, as the SMTP sink (aiosmtpd) does, not a thread a connection: the workers'
128 connections made 128 threads contending for one GIL, 0.45 ms of CPU an answer that SES's
servers, not ours, would spend.

    python ses_sink.py PORT REDIS_URL LATENCY_MS TLS_CHAIN
"""

from __future__ import annotations

import asyncio
import json
import ssl
import sys
import time
import uuid

import redis


class SesSink:
    """Takes every mail; what arrived, and the connections, are written to Redis."""

    def __init__(self, db: redis.Redis, latency: float) -> None:
        self.db = db
        self.delay = latency

    async def serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """One connection: requests read by their Content-Length, each answered in one send."""
        self.db.incr("bench:connections")
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                await asyncio.sleep(self.delay)
                reply = json.dumps({"MessageId": self.take(body)}).encode()
                writer.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    b"x-amzn-RequestId: %s\r\nContent-Length: %d\r\n\r\n%s"
                    % (str(uuid.uuid4()).encode(), len(reply), reply)
                )
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass  # the worker closed its connection (or was stopped)
        finally:
            writer.close()

    def take(self, body: bytes) -> str:
        """Record one mail; its MessageId, shaped as SES's."""
        request = json.loads(body)
        to = request["Destination"]["ToAddresses"][0]
        tags = {t["Name"]: t["Value"] for t in request.get("EmailTags", [])}
        message_id = f"0102{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000"
        pipe = self.db.pipeline(transaction=False)
        pipe.hset("bench:arrivals", message_id, time.time())
        pipe.hset("bench:ses_ids", message_id, json.dumps([to, tags["notification_id"]]))
        pipe.incr("bench:messages")
        pipe.execute()
        return message_id


async def main() -> None:
    port, db = int(sys.argv[1]), redis.Redis.from_url(sys.argv[2])
    latency, chain = float(sys.argv[3]), sys.argv[4]
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(chain)
    sink = SesSink(db, latency / 1000)
    server = await asyncio.start_server(sink.serve, "127.0.0.1", port, ssl=context, backlog=128)
    print("ses ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())

"""The benchmark's SMTP server, in its own process: counts connections and records each
message's arrival time in Redis (``bench:arrivals``: notification id or subject -> time).

    python sink.py PORT REDIS_URL [LATENCY_MS]

With a latency, it waits that long before answering MAIL, RCPT and DATA, as a relay that far
away would seem to (each command costs one round trip).
"""

from __future__ import annotations

import asyncio
import email
import sys
import time
from typing import Any

import redis
from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, db: redis.Redis, latency: float) -> None:
        self.db = db
        self.latency = latency

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.db.incr("bench:connections")
        session.host_name = hostname
        await asyncio.sleep(self.latency)
        return responses

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.latency)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        await asyncio.sleep(self.latency)
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        await asyncio.sleep(self.latency)
        headers = email.message_from_bytes(envelope.content.split(b"\r\n\r\n", 1)[0])
        key = headers.get("X-Notification-Id") or headers.get("Subject") or "?"
        self.db.hset("bench:arrivals", key, time.time())
        self.db.incr("bench:messages")
        return "250 OK"


def main() -> None:
    port, redis_url = int(sys.argv[1]), sys.argv[2]
    latency = float(sys.argv[3]) / 1000 if len(sys.argv) > 3 else 0.0
    handler = Handler(redis.Redis.from_url(redis_url), latency)
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    print("sink ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

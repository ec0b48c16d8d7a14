"""The benchmark's SMTP server, in its own process: counts connections and records each
message's arrival time in Redis (``bench:arrivals``: notification id or subject -> time)."""

from __future__ import annotations

import asyncio
import email
import sys
import time
from typing import Any

import redis
from aiosmtpd.controller import Controller


class Handler:
    def __init__(self, db: redis.Redis) -> None:
        self.db = db

    async def handle_EHLO(
        self, server: Any, session: Any, envelope: Any, hostname: str, responses: list[str]
    ) -> list[str]:
        self.db.incr("bench:connections")
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        headers = email.message_from_bytes(envelope.content.split(b"\r\n\r\n", 1)[0])
        key = headers.get("X-Notification-Id") or headers.get("Subject") or "?"
        self.db.hset("bench:arrivals", key, time.time())
        self.db.incr("bench:messages")
        return "250 OK"


def main() -> None:
    port, redis_url = int(sys.argv[1]), sys.argv[2]
    controller = Controller(
        Handler(redis.Redis.from_url(redis_url)), hostname="127.0.0.1", port=port
    )
    controller.start()
    print("sink ready", flush=True)
    try:
        asyncio.run(asyncio.Event().wait())
    finally:
        controller.stop()


if __name__ == "__main__":
    main()

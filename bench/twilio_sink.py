"""The benchmark's Twilio: the Messages REST call over keep-alive HTTP/1.1, answered after a
latency, in its own process. Records when each text arrived in Redis (``bench:sms``: number ->
time) and counts connections (``bench:sms_connections``).

    python twilio_sink.py PORT REDIS_URL LATENCY_MS
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import redis


def main() -> None:
    port, db, latency = int(sys.argv[1]), redis.Redis.from_url(sys.argv[2]), float(sys.argv[3])

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def setup(self) -> None:
            super().setup()
            db.incr("bench:sms_connections")

        def do_POST(self) -> None:
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            db.hset("bench:sms", form["To"][0], time.time())
            time.sleep(latency / 1000)
            sid = "SM" + uuid.uuid4().hex
            body = json.dumps({"sid": sid, "status": "queued", "to": form["To"][0]}).encode()
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    print("twilio ready", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()

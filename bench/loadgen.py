"""A load generator in its own process (aiohttp, keep-alive), printing one JSON line of figures.

closed: N connections, each sending its next request when the last one is answered, for S
seconds. open: a fixed rate of requests a second for S seconds, whatever the answers (the
time of each send is kept, to measure end to end against the arrival at the SMTP sink).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from typing import Any

import aiohttp


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


RUN = uuid.uuid4().hex[:8]


def body_for(template: str, n: int) -> bytes:
    # Each request gets its own recipient and phone, so no per-recipient limit is hit.
    text = template.replace("{n}", str(n)).replace("{u}", f"{RUN}{n}")
    return text.replace("{p}", f"{n % 10**8:08d}").encode()


async def closed(args: argparse.Namespace) -> dict[str, Any]:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    counter = 0
    deadline = time.perf_counter() + args.seconds
    connector = aiohttp.TCPConnector(limit=args.conns, force_close=False)
    async with aiohttp.ClientSession(connector=connector, headers=args.headers) as session:

        async def call(url: str, body: str, n: int) -> int | str:
            try:
                async with session.request(args.method, url, data=body_for(body, n)) as response:
                    await response.read()
                    return response.status
            except aiohttp.ClientError as e:
                return type(e).__name__

        async def one_connection() -> None:
            nonlocal counter
            while time.perf_counter() < deadline and (not args.count or counter < args.count):
                counter += 1
                n = counter
                started = time.perf_counter()
                status = await call(args.url, args.body, n)
                if args.then_url and status == 202:
                    # A pair: the second request (a verify) goes with the first one's values.
                    status = await call(args.then_url, args.then_body, n)
                took = time.perf_counter() - started
                if isinstance(status, int) and status < 400:
                    latencies.append(took)
                else:
                    errors[str(status)] = errors.get(str(status), 0) + 1

        began = time.perf_counter()
        await asyncio.gather(*(one_connection() for _ in range(args.conns)))
        elapsed = time.perf_counter() - began
    return {
        "requests": len(latencies),
        "rps": len(latencies) / elapsed,
        "p50_ms": percentile(latencies, 0.50) * 1000,
        "p99_ms": percentile(latencies, 0.99) * 1000,
        "errors": errors,
    }


async def open_loop(args: argparse.Namespace) -> dict[str, Any]:
    sent: dict[str, float] = {}
    errors: dict[str, int] = {}
    connector = aiohttp.TCPConnector(limit=200)
    async with aiohttp.ClientSession(connector=connector, headers=args.headers) as session:

        async def one(n: int) -> None:
            at = time.time()
            try:
                async with session.request(args.method, args.url, data=body_for(args.body, n)) as r:
                    answer = await r.json(content_type=None)
                    if r.status < 400:
                        sent[answer["id"]] = at
                    else:
                        errors[str(r.status)] = errors.get(str(r.status), 0) + 1
            except aiohttp.ClientError as e:
                errors[type(e).__name__] = errors.get(type(e).__name__, 0) + 1

        tasks = []
        start = time.perf_counter()
        for n in range(int(args.rate * args.seconds)):
            # Keep to the schedule: request n goes at start + n / rate.
            delay = start + n / args.rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(n)))
        await asyncio.gather(*tasks)
    return {"sent": sent, "errors": errors}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=["closed", "open"])
    parser.add_argument("--url", required=True)
    parser.add_argument("--method", default="POST")
    parser.add_argument("--body", default="")
    parser.add_argument("--header", action="append", default=[])
    parser.add_argument("--conns", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--count", type=int, default=0, help="stop after this many (closed)")
    parser.add_argument("--then-url", default="")
    parser.add_argument("--then-body", default="")
    args = parser.parse_args()
    args.headers = dict(h.split(": ", 1) for h in args.header)
    result = asyncio.run(closed(args) if args.mode == "closed" else open_loop(args))
    print(json.dumps(result))


if __name__ == "__main__":
    main()

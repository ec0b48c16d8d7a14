"""The operator console's data (issue #40): with 1,000,000 notifications stored, the message
log's first page for each filter, a recipient search and a timeline, timed as the console calls
them (``notifier.services.message_log``, in this process); what the log's lists cost in Redis
(``MEMORY USAGE``) a notification, and a timeline a record; and the ingress of POST /v1/mail
beside the same ingress of the code before the log, in turns in the same run.

The notifications are made through the store's own code: batches fanned out (500 rows to a Lua
step, ``batches/fan_out``, as a batch's are), single notifications stored as a request stores
one (``store.create``), and a sample claimed and settled (sent, failed, delivered) as workers
and receipts do.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from harness import BIN, MAIL, REPEATS, ROOT, Bench, beside, load, percentile

from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.message_log import LogFilter, page, timeline
from notifier.settings import Settings
from notifier.stores.batches import CHUNK, Chunk, Row, new_batch_id
from notifier.stores.notifications import record_key

TITLE = "console: the message log and timelines, 1,000,000 notifications stored"
# BENCH_CONSOLE_STORED: fewer, for a quick look at the scenario itself.
STORED = int(os.environ.get("BENCH_CONSOLE_STORED") or 1_000_000)
SINGLE = STORED // 20  # of them stored one by one, as requests store them; the rest by batches
SETTLED = SINGLE * 2 // 5  # claimed and settled: a tenth failed, half the sent ones delivered
CLIENTS = 20  # client n sends 1/(n+1) as much as the first
ADDRESSES = 300_000  # distinct mail addresses (numbers as many): many get several
QUERIES = 300  # timed calls of each kind
SAMPLE = 500  # records whose timeline's bytes are measured
INDEX = "notifier/stores/notifications/log.py"


def run(bench: Bench) -> dict[str, Any]:
    """Ingress beside the code before the log; then the store filled, its lists measured, and
    each kind of call timed."""
    r: dict[str, Any] = {"ingress": ingress_beside(bench)}
    bench.reset()
    with runtime(bench) as rt:
        started = time.monotonic()
        samples = fill(rt)
        r["fill_s"] = time.monotonic() - started
        r["memory"] = memory(rt)
        r["index_cost"] = index_cost(rt)
        r["calls"] = calls(rt, samples)
    bench.reset()
    return {"console": r}


@contextlib.contextmanager
def runtime(bench: Bench) -> Iterator[Runtime]:
    """A runtime on the bench's Redis with the bench's settings, as the web process has."""
    saved = dict(os.environ)
    os.environ.update({k: v for k, v in bench.env.items() if k.startswith("NOTIFIER_")})
    try:
        rt: Runtime = create_app(Settings(_env_file=None)).extensions["notifier"]  # type: ignore[call-arg]
    finally:
        os.environ.clear()
        os.environ.update(saved)
    yield rt


# -- ingress beside the code before the log -------------------------------------------------


def before_tree() -> Path:
    """The tree as it was before the message log (BENCH_BESIDE: another git ref), exported."""
    ref = os.environ.get("BENCH_BESIDE") or _before_the_log()
    folder = Path(tempfile.mkdtemp(prefix="notifier-before-"))
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref], capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return folder


def _before_the_log() -> str:
    added = subprocess.run(
        ["git", "-C", str(ROOT), "log", "--diff-filter=A", "--format=%H", "--", INDEX],
        capture_output=True, text=True, check=True,
    ).stdout.split()  # fmt: skip
    return f"{added[-1]}^"


def ingress_beside(bench: Bench) -> dict[str, Any]:
    """POST /v1/mail, 16 connections, 10 s a run, REPEATS runs of each tree in turns (an empty
    Redis each), the median: this tree's and the one before the log's."""
    gunicorn = [str(BIN / "gunicorn"), "notifier:create_app()"]
    now, now_base = bench.web("console-web", gunicorn)
    then, then_base = bench.web("console-web-before", gunicorn, before_tree())
    trees = {"with_log": now_base, "before_log": then_base}
    try:
        for base in trees.values():
            load("closed", f"{base}/v1/mail", body=MAIL, header=bench.headers, conns=16, seconds=2)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in trees}
        for _ in range(REPEATS):
            for name, base in trees.items():
                bench.reset()
                runs[name].append(load("closed", f"{base}/v1/mail", body=MAIL,
                                       header=bench.headers, conns=16, seconds=10))  # fmt: skip
    finally:
        now.stop()
        then.stop()
    found = {}
    for name, taken in runs.items():
        taken.sort(key=lambda x: x["rps"])
        found[name] = {**taken[len(taken) // 2], "runs_rps": [round(x["rps"]) for x in taken]}
    return found


# -- the store filled -----------------------------------------------------------------------


def fill(rt: Runtime) -> dict[str, list[Any]]:
    """STORED notifications, as the store makes them; samples of what the calls look for."""
    rng = random.Random(40)
    clients = [f"client-{n:02d}" for n in range(CLIENTS)]
    weights = [1 / (n + 1) for n in range(CLIENTS)]
    samples: dict[str, list[Any]] = {"recipients": [], "references": [], "ids": []}
    started = time.time()
    made = 0
    while made < STORED - SINGLE:
        client = rng.choices(clients, weights)[0]
        kind = "sms" if rng.random() < 0.25 else "mail"
        rows = [row(rng, kind, made + i) for i in range(CHUNK)]
        batch_id = new_batch_id()
        batch = rt.batches.create(
            batch_id=batch_id, client=client, content={}, rows=rows, send_at=None,
            reference=None, test=False, callback=False, kind=kind,
        )  # fmt: skip
        payloads = [json.dumps({"batch": batch_id, "to": to}) for to, _, _, _ in rows]
        rt.batches.fan_out(
            batch, Chunk(0, rows), payloads=payloads, messages=[""] * len(rows), queue="bench:none"
        )
        made += len(rows)
        if rng.random() < 0.05:
            samples["recipients"].append(rows[0][0])
            samples["references"].append(rows[1][2])
    kinds = ("mail", "sms", "mail_captcha", "sms_captcha")
    single: list[str] = []
    for n in range(SINGLE):
        kind = rng.choice(kinds)
        to, _, reference, _ = row(rng, "sms" if kind.startswith("sms") else "mail", made + n)
        notification_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        rt.store.create(
            notification_id=notification_id, client=rng.choices(clients, weights)[0], kind=kind,
            payload={"to": [to] if kind == "mail" else to}, reference=reference,
        )  # fmt: skip
        single.append(notification_id)
    samples["span"] = [started, time.time()]
    for n, notification_id in enumerate(rng.sample(single, SETTLED)):
        settle(rt, notification_id, n)
        samples["ids"].append(notification_id)
    return samples


def row(rng: random.Random, kind: str, n: int) -> Row:
    """A batch row: a recipient many others share, a reference for half of them."""
    at = rng.randrange(ADDRESSES)
    to = f"u{at}@example.com" if kind == "mail" else f"+86138{at:08d}"
    return to, {}, f"order-{n}" if n % 2 else None, {}


def settle(rt: Runtime, notification_id: str, n: int) -> None:
    """One attempt, as a worker makes it; a tenth failed, half the rest delivered by receipt."""
    store = rt.store
    store.claim(notification_id, lease=30, max_attempts=5)
    if n % 10 == 0:
        store.settle(notification_id, "failed", provider="smtp", error="550 5.1.1 no such user")
        return
    ref = f"<{notification_id}@bench>"
    store.settle(notification_id, "sent", provider="smtp", provider_ref=ref)
    if n % 2:
        store.receipt("smtp", ref, "delivered")


# -- what the lists cost --------------------------------------------------------------------


def memory(rt: Runtime) -> dict[str, Any]:
    """MEMORY USAGE of every list of the log, by kind of list, a notification stored; and of the
    timeline fields of settled records (a copy of each without them, the difference)."""
    raw = rt.redis
    families = {"shard": 0, "client": 0, "failures": 0, "bucket": 0}
    keys = dict.fromkeys(families, 0)
    for key in raw.scan_iter(match="notifier:{?}:log*", count=1000):
        family = (
            "client" if ":log:c:" in key else "bucket" if ":log:h:" in key
            else "failures" if key.endswith(":log:f") else "shard"
        )  # fmt: skip
        families[family] += int(raw.memory_usage(key, samples=0) or 0)
        keys[family] += 1
    total = sum(families.values())
    timeline_bytes = []
    for notification_id in sample_settled(rt):
        key, copy = record_key(notification_id), f"bench:copy:{notification_id}"
        raw.restore(copy, 0, raw.dump(key), replace=True)  # type: ignore[arg-type]
        raw.hdel(copy, "en", *(f"e{i}" for i in range(20)))
        timeline_bytes.append(
            int(raw.memory_usage(key, samples=0) or 0) - int(raw.memory_usage(copy, samples=0) or 0)
        )
        raw.delete(copy)
    info = raw.info("memory")
    return {
        "index_bytes": total,
        "index_bytes_a_notification": total / STORED,
        "by_list_a_notification": {f: b / STORED for f, b in families.items()},
        "lists": keys,
        "timeline_bytes_a_settled_record": sum(timeline_bytes) / max(1, len(timeline_bytes)),
        "used_memory_a_notification": int(info["used_memory"]) / STORED,
    }


def sample_settled(rt: Runtime) -> list[str]:
    ids = list(rt.redis.scan_iter(match="notifier:{?}:n:*", count=5000))
    found = [k.rsplit(":", 1)[1] for k in ids[:50_000] if rt.redis.hexists(k, "en")]
    return found[:SAMPLE]


def index_cost(rt: Runtime, n: int = 2000) -> dict[str, float]:
    """What indexing costs Redis a notification stored as a request stores one, the lists as
    long as the fill left them: the microseconds Redis spent (INFO commandstats) on the index's
    script, beside the record's own commands; and the whole store call, in this process."""
    raw = rt.redis
    raw.config_resetstat()
    started = time.perf_counter()
    for i in range(n):
        rt.store.create(
            notification_id=str(uuid.uuid4()), client="client-00", kind="mail",
            payload={"to": [f"cost{i}@example.com"]}, reference=f"cost-{i}",
        )  # fmt: skip
    took = time.perf_counter() - started
    stats = raw.info("commandstats")
    usec = {name.removeprefix("cmdstat_"): float(v["usec"]) for name, v in stats.items()}
    record = sum(usec.get(c, 0.0) for c in ("hset", "expire", "set", "zadd", "lpush"))
    return {
        "index_us": usec.get("evalsha", 0.0) / n, "record_us": record / n,
        "create_ms": 1000 * took / n,
    }  # fmt: skip


# -- the calls timed ------------------------------------------------------------------------


def calls(rt: Runtime, samples: dict[str, list[Any]]) -> dict[str, Any]:
    """Each kind of call QUERIES times, a random one of its kind each time: p50, p99, max (ms),
    and the rows its first page had on average."""
    rng = random.Random(41)
    clients = [f"client-{n:02d}" for n in range(CLIENTS)]
    oldest, newest = samples["span"]
    middle = (oldest + newest) / 2

    def window() -> LogFilter:
        start = rng.uniform(oldest, newest - 5)
        return LogFilter(client=rng.choice(clients), since=start, until=start + 5)

    wanted: dict[str, Callable[[], LogFilter]] = {
        "every notification": LogFilter,
        "a client": lambda: LogFilter(client=rng.choice(clients)),
        "a client's SMS": lambda: LogFilter(client=rng.choice(clients), kind="sms"),
        "failed (a rare status)": lambda: LogFilter(status="failed"),
        "a client's failed": lambda: LogFilter(client=rng.choice(clients), status="failed"),
        # None stored: a status read from the records at its worst, every record it may look at
        "retrying (none: the read-time filter's worst)": lambda: LogFilter(status="retrying"),
        "a reference": lambda: LogFilter(reference=rng.choice(samples["references"])),
        "a client's 5 s": window,
        "before the middle": lambda: LogFilter(until=middle),
        "a recipient": lambda: LogFilter(recipient=rng.choice(samples["recipients"])),
        "a client's recipient": lambda: LogFilter(
            client=rng.choice(clients), recipient=rng.choice(samples["recipients"])
        ),
    }

    def first_page(make: Callable[[], LogFilter]) -> Callable[[], int]:
        return lambda: len(page(rt, make()).rows)

    found: dict[str, Any] = {name: timed(first_page(make)) for name, make in wanted.items()}
    found["a timeline"] = timed(lambda: len(timeline(rt, rng.choice(samples["ids"])) or []))
    return found


def timed(call: Callable[[], int]) -> dict[str, float]:
    call()  # the scripts loaded, the connections made
    took, sizes = [], []
    for _ in range(QUERIES):
        started = time.perf_counter()
        sizes.append(call())
        took.append(time.perf_counter() - started)
    return {
        "p50_ms": percentile(took, 0.5) * 1000, "p99_ms": percentile(took, 0.99) * 1000,
        "max_ms": max(took) * 1000, "rows": sum(sizes) / len(sizes),
    }  # fmt: skip


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The console's figures beside the baseline run's."""
    return beside(rows(r), before)


def rows(r: dict[str, Any]) -> list[tuple[str, str, str]]:
    """The figures as (label, figure, key in bench/baseline.json)."""
    now, then = r["ingress"]["with_log"], r["ingress"]["before_log"]
    m = r["memory"]

    def ing(x: dict[str, Any]) -> str:
        runs = "/".join(str(n) for n in x["runs_rps"])
        return f"{x['rps']:.0f} req/s  p99 {x['p99_ms']:.1f} ms  (runs {runs})"

    found = [
        ("ingress POST /v1/mail, 16 conns, median of 3 x 10 s", ing(now), "ingress_with_log"),
        ("  the code before the log, in turns with it", ing(then), "ingress_before_log"),
        ("  with / before", f"{now['rps'] / then['rps']:.2f}", "ingress_ratio"),
        (f"{STORED:,} notifications stored in", f"{r['fill_s']:.0f} s", "fill_s"),
        ("the log's lists a notification (target < 150 B)",
         f"{m['index_bytes_a_notification']:.1f} B  ({m['index_bytes'] / 2**20:.0f} MiB)", "index_b"),
        ("  by list: shard / client / failures / keyed hashes",
         " / ".join(f"{v:.1f}" for v in m["by_list_a_notification"].values()), "by_list"),
        ("indexing a notification, Redis CPU (INFO commandstats)",
         f"{r['index_cost']['index_us']:.1f} us  (the record's own commands "
         f"{r['index_cost']['record_us']:.1f} us; store.create {r['index_cost']['create_ms']:.2f} ms)",
         "index_us"),
        ("a settled record's timeline", f"{m['timeline_bytes_a_settled_record']:.0f} B", "timeline_b"),
        ("Redis used_memory a notification (records, payloads, all)",
         f"{m['used_memory_a_notification']:.0f} B", "used_b"),
    ]  # fmt: skip
    for name, t in r["calls"].items():
        found.append((f"{name} (target p99 < 300 ms)",
                     f"p50 {t['p50_ms']:.1f}  p99 {t['p99_ms']:.1f}  max {t['max_ms']:.0f} ms"
                     f"  rows {t['rows']:.0f}", name))  # fmt: skip
    return found

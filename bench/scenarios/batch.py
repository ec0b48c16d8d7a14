"""Batches: a 10,000-row batch's accept time; a batch's drain beside the same mails one by one."""

from __future__ import annotations

from functools import partial
from typing import Any

from harness import (
    BATCH_ROWS,
    BIN,
    DRAIN,
    RELAY_MS,
    WELCOME,
    Bench,
    batch_body,
    beside,
    has_written,
    rate,
    wait_until,
)

TITLE = "batches"


def run(bench: Bench) -> dict[str, Any]:
    """A 10,000-row batch's accept time; a batch's drain beside the same mails one by one,
    on loopback and through a far relay."""
    far = {**bench.env, "NOTIFIER_MAIL_PORT": str(bench.far_smtp_port)}
    web, base = bench.web("batch-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    url = f"{base}/v1/mail/batch"
    r: dict[str, Any] = {}
    try:
        for _ in range(4):  # warm both web processes (templates, connections)
            bench.call(url, batch_body(10))
        big = batch_body(BATCH_ROWS)
        r["accept"] = {"rows": BATCH_ROWS, "body_bytes": len(big)}
        r["accept"]["no_worker"] = bench.accepts(url, big, fresh=True)
        # Each accept after the first competes with the fan-out and sends of those before.
        bench.reset()
        worker = bench.worker("batch-accept-worker", "celery_app")
        wait_until(partial(has_written, worker, "ready."), 60, "the worker")
        try:
            r["accept"]["worker_busy"] = bench.accepts(url, big, fresh=False)
        finally:
            worker.stop()
        for relay, env in [("loopback", bench.env), (f"{RELAY_MS}ms", far)]:
            bench.reset()
            bench.queue(base, WELCOME)
            r[f"single_{relay}"] = bench.drain(
                bench.worker(f"batch-single-{relay}", "celery_app", env=env)
            )
            bench.reset()
            accepted, _ = bench.call(url, batch_body(DRAIN))
            r[f"batch_{relay}"] = bench.drain(
                bench.worker(f"batch-drain-{relay}", "celery_app", env=env)
            )
            r[f"batch_{relay}"]["batch"] = bench.call(f"{base}{accepted['links']['bench']}")[0]
    finally:
        web.stop()
    return {"batch": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The batch figures beside those of the baseline run."""
    accept = r["accept"]

    def took(a: dict[str, Any]) -> str:
        return f"p50 {a['p50_s']:.2f} s  max {a['max_s']:.2f} s"

    rows = [
        (f"accept {accept['rows']} rows, {accept['body_bytes'] / 2**20:.1f} MiB, no worker (target p50 < 1 s)", took(accept["no_worker"]), "accept_s"),
        ("  with the worker fanning out and sending", took(accept["worker_busy"]), "accept_busy_s"),
    ]  # fmt: skip
    for relay, where in [
        ("loopback", "relay on loopback"),
        (f"{RELAY_MS}ms", f"relay {RELAY_MS} ms away"),
    ]:
        one, single = r[f"batch_{relay}"], r[f"single_{relay}"]
        rows += [
            (f"drain {DRAIN}, {where}: one batch", rate(one), f"batch_{relay}"),
            (f"  the same {DRAIN} mails posted one by one", rate(single), f"single_{relay}"),
            ("  batch / single (target >= 1.0)", f"{one['mails_per_s'] / single['mails_per_s']:.2f}", f"ratio_{relay}"),
        ]  # fmt: skip
    return beside(rows, before)

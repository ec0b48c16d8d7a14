"""Worker CPU a mail: what the default deployment's workers spend on each mail of a drain."""

from __future__ import annotations

from typing import Any

from harness import BIN, DRAIN, MAIL, Bench, beside, rate, size

TITLE = "worker CPU a mail"
RUNS = 3  # drains; the median is shown


def run(bench: Bench) -> dict[str, Any]:
    """The Procfile's worker once per core draining the same queued mails RUNS times, beside
    one smtplib connection: CPU (user + system) of the worker processes over the mails sent,
    which another process on the same cores changes far less than it changes mails a second."""
    web, base = bench.web("cpu-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    processes, threads = size(bench.env)
    r: dict[str, Any] = {"processes": processes, "threads": threads, "drains": []}
    try:
        bench.reset()
        r["smtplib_one_connection"] = bench.smtplib_drain()
        for n in range(RUNS):
            bench.reset()
            bench.queue(base, MAIL)
            r["drains"].append(bench.drain(bench.workers(f"cpu-{n}", bench.env)))
    finally:
        web.stop()
    return {"cpu": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The median drain's worker CPU a mail beside the baseline's."""
    drains = sorted(r["drains"], key=lambda d: d["worker_ms_a_mail"])
    median = drains[len(drains) // 2]
    limit = r["smtplib_one_connection"]["mails_per_s"]
    each = "/".join(f"{d['worker_ms_a_mail']:.2f}" for d in r["drains"])
    rows = [
        ("worker processes x threads", f"{r['processes']} x {r['threads']}", "size"),
        (f"worker CPU a mail, drain of {DRAIN} (median of {RUNS})",
         f"{median['worker_ms_a_mail']:.2f} ms  (runs {each})", "worker_ms"),
        ("  of which the event loops (the rest: the tasks' threads)",
         f"{median['worker_loop_ms_a_mail']:.2f} ms", "loop_ms"),
        ("  that drain, relay on loopback", rate(median), "drain"),
        (f"one plain smtplib connection, {DRAIN} mails", f"{limit:.0f} mails/s", "smtplib"),
        ("  drain / one smtplib connection (target >= 0.75)",
         f"{median['mails_per_s'] / limit:.2f}", "drain_vs_smtplib"),
    ]  # fmt: skip
    return beside(rows, before)

"""DKIM: the same drain unsigned and signed."""

from __future__ import annotations

import json
import subprocess
from typing import Any

from harness import BIN, DRAIN, LOGS, MAIL, Bench, beside, rate

TITLE = "DKIM"


def run(bench: Bench) -> dict[str, Any]:
    """The same drain, unsigned and DKIM-signed (a 2048-bit RSA key for example.com)."""
    mail = MAIL
    key = LOGS / "dkim.pem"
    subprocess.run(["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
                   check=True, capture_output=True)  # fmt: skip
    keys = json.dumps({"example.com": {"selector": "bench", "private_key_file": str(key)}})
    signed = {**bench.env, "NOTIFIER_DKIM_KEYS": keys}
    web, base = bench.web("dkim-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    r: dict[str, Any] = {}
    try:
        for label, env in [("unsigned", bench.env), ("signed", signed)]:
            bench.reset()
            bench.queue(base, mail)
            r[label] = bench.drain(bench.worker(f"dkim-{label}", "celery_app", env=env))
    finally:
        web.stop()
    return {"dkim": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The signing figures beside those of the baseline run."""

    def cpu(d: dict[str, Any]) -> str:
        return f"{d['cpu_ms_per_mail']['workers']:.2f} ms of the worker a mail"

    unsigned, signed = r["unsigned"], r["signed"]
    rows = [
        (f"drain {DRAIN} mails, relay on loopback, unsigned", rate(unsigned), "unsigned"),
        ("  CPU", cpu(unsigned), "cpu_unsigned"),
        ("  DKIM-signed, rsa-sha256 2048 bits", rate(signed), "signed"),
        ("  CPU", cpu(signed), "cpu_signed"),
        ("  signed / unsigned", f"{signed['mails_per_s'] / unsigned['mails_per_s']:.2f}", "ratio"),
    ]  # fmt: skip
    return beside(rows, before)

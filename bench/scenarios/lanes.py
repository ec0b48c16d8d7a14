"""Lanes: a drain near and far, captchas through a far Twilio, a captcha behind a mail backlog."""

from __future__ import annotations

import json
import time
from functools import partial
from typing import Any

from harness import (
    BACKLOG,
    BIN,
    CAPTCHAS,
    MAIL,
    RELAY_MS,
    TWILIO_MS,
    Bench,
    beside,
    percentile,
    rate,
    wait_until,
)

TITLE = "lanes"


def run(bench: Bench) -> dict[str, Any]:
    """Drain near and far, captchas through a far Twilio, a captcha behind a mail backlog."""
    mail = MAIL
    far = {**bench.env, "NOTIFIER_MAIL_PORT": str(bench.far_smtp_port)}
    web, base = bench.web("lanes-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    r: dict[str, Any] = {}
    try:
        for label, env in [("drain_loopback", bench.env), (f"drain_{RELAY_MS}ms", far)]:
            bench.reset()
            bench.queue(base, mail)
            r[label] = bench.drain(bench.worker(f"lanes-{label}", "celery_app", env=env))
        r["captchas"] = bench.texts(
            base, CAPTCHAS, lambda: bench.worker("lanes-captchas", "celery_app", env=far)
        )
        r["captcha_behind_backlog"] = captcha_behind_backlog(bench, base, mail, far)
    finally:
        web.stop()
    return {"lanes": r}


def captcha_behind_backlog(
    bench: Bench, base: str, mail: str, env: dict[str, str]
) -> dict[str, Any]:
    """From POST /v1/sms/captcha to Twilio while a mail backlog drains through a far relay."""
    bench.reset()
    bench.queue(base, mail, count=BACKLOG)
    worker = bench.worker("lanes-backlog", "celery_app", env=env)
    waits, behind = [], []
    try:
        wait_until(lambda: bench.sink_db.hlen("bench:arrivals") >= 100, 120, "the drain")
        for n in range(5):
            phone = f"+8613900{n:06d}"
            body = json.dumps({"phone": phone, "purpose": "backlog"}).encode()
            posted = time.time()
            bench.call(f"{base}/v1/sms/captcha", body)
            at = wait_until(partial(bench.sink_db.hget, "bench:sms", phone), 120, "captcha")
            waits.append(float(at) - posted)
            behind.append(BACKLOG - bench.sink_db.hlen("bench:arrivals"))
    finally:
        worker.stop()
    return {
        "p50_s": percentile(waits, 0.5),
        "max_s": max(waits),
        "mails_still_queued": min(behind),
        "waits_s": [round(w, 3) for w in waits],
    }


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The lanes figures beside those of the baseline run."""
    near, far = r["drain_loopback"], r[f"drain_{RELAY_MS}ms"]
    behind = r["captcha_behind_backlog"]
    rows = [
        ("drain, relay on loopback", rate(near), "drain_loopback"),
        (f"drain, relay {RELAY_MS} ms away", rate(far), "drain_far"),
        ("  far / loopback (target >= 0.70)", f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "drain_ratio"),
        (f"captchas through a {TWILIO_MS} ms Twilio (target >= 50/s)", f"{r['captchas']['per_s']:.0f}/s ({r['captchas']['connections']} HTTP conns)", "captchas_per_s"),
        (f"captcha behind {BACKLOG} mails, relay {RELAY_MS} ms (target < 2 s)", f"p50 {behind['p50_s']:.2f} s  max {behind['max_s']:.2f} s  ({behind['mails_still_queued']} mails still queued)", "captcha_behind_backlog_s"),
    ]  # fmt: skip
    return beside(rows, before)

"""Lanes: a drain near and far, captchas through a far Twilio, a captcha behind a mail backlog."""

from __future__ import annotations

from typing import Any

from harness import BACKLOG, BIN, CAPTCHAS, MAIL, RELAY_MS, TWILIO_MS, Bench, beside, rate

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
        r["captcha_behind_backlog"] = bench.captcha_behind(
            base,
            lambda: bench.worker("lanes-backlog", "celery_app", env=far),
            lambda: bench.sink_db.hlen("bench:arrivals"),
        )
    finally:
        web.stop()
    return {"lanes": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The lanes figures beside those of the baseline run."""
    near, far = r["drain_loopback"], r[f"drain_{RELAY_MS}ms"]
    behind = r["captcha_behind_backlog"]
    rows = [
        ("drain, relay on loopback", rate(near), "drain_loopback"),
        (f"drain, relay {RELAY_MS} ms away", rate(far), "drain_far"),
        ("  far / loopback (target >= 0.70)", f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "drain_ratio"),
        (f"captchas through a {TWILIO_MS} ms Twilio (target >= 50/s)", f"{r['captchas']['per_s']:.0f}/s ({r['captchas']['connections']} HTTP conns)", "captchas_per_s"),
        (f"captcha behind {BACKLOG} mails, relay {RELAY_MS} ms (target < 2 s)", f"p50 {behind['p50_s']:.2f} s  max {behind['max_s']:.2f} s  ({behind['still_queued']} mails still queued)", "captcha_behind_backlog_s"),
    ]  # fmt: skip
    return beside(rows, before)

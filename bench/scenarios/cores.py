"""Every core: the default deployment's drain and captchas beside one smtplib connection."""

from __future__ import annotations

from functools import partial
from typing import Any

from harness import BIN, DRAIN, MAIL, RELAY_MS, TWILIO_MS, Bench, beside, rate, size

TITLE = "every core"


def run(bench: Bench) -> dict[str, Any]:
    """The default deployment (the Procfile's worker once per core, as notifier run starts
    it): its drain beside one smtplib connection, near and far, and its captchas through a
    far Twilio beside a Twilio on loopback."""
    mail = MAIL
    far = {**bench.env, "NOTIFIER_MAIL_PORT": str(bench.far_smtp_port)}
    near_twilio = {
        **bench.env,
        "NOTIFIER_TWILIO_BASE_URL": f"http://127.0.0.1:{bench.near_twilio_port}",
    }
    web, base = bench.web("cores-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    processes, threads = size(bench.env)
    r: dict[str, Any] = {"processes": processes, "threads": threads}
    try:
        bench.reset()
        r["smtplib_one_connection"] = bench.smtplib_drain()
        for label, env in [("drain_loopback", bench.env), (f"drain_{RELAY_MS}ms", far)]:
            bench.reset()
            bench.queue(base, mail)
            r[label] = bench.drain(bench.workers(f"cores-{label}", env))
        for label, env in [("captchas_loopback", near_twilio), ("captchas_far", bench.env)]:
            r[label] = bench.texts(base, DRAIN, partial(bench.workers, f"cores-{label}", env))
    finally:
        web.stop()
    return {"cores": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The every-core figures beside those of the baseline run."""
    limit = r["smtplib_one_connection"]["mails_per_s"]
    near, far = r["drain_loopback"], r[f"drain_{RELAY_MS}ms"]
    texts_near, texts_far = r["captchas_loopback"], r["captchas_far"]

    def texts(t: dict[str, Any]) -> str:
        return f"{t['per_s']:.0f}/s ({t['connections']} HTTP conns)"

    def cpu(d: dict[str, Any]) -> str:
        ms = d["cpu_ms_per_mail"]
        return f"{ms['workers']:.2f} ms workers, {ms['sink']:.2f} sink, {ms['redis']:.2f} redis"

    rows = [
        ("worker processes x threads", f"{r['processes']} x {r['threads']}", "size"),
        (f"one plain smtplib connection, {DRAIN} mails", f"{limit:.0f} mails/s", "smtplib"),
        ("drain, relay on loopback", rate(near), "drain_loopback"),
        ("  CPU a mail", cpu(near), "cpu_loopback"),
        ("  / one smtplib connection (target >= 0.70)", f"{near['mails_per_s'] / limit:.2f}", "drain_vs_smtplib"),
        (f"drain, relay {RELAY_MS} ms away", rate(far), "drain_far"),
        ("  far / loopback (target >= 0.85)", f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "drain_ratio"),
        (f"{DRAIN} captchas, Twilio on loopback", texts(texts_near), "captchas_loopback"),
        (f"{DRAIN} captchas, Twilio {TWILIO_MS} ms away", texts(texts_far), "captchas_far"),
        ("  far / loopback (target >= 0.70)", f"{texts_far['per_s'] / texts_near['per_s']:.2f}", "captchas_ratio"),
    ]  # fmt: skip
    return beside(rows, before)

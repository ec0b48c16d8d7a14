"""The overview: Notifier's ingress, drain, end to end, captchas and upload tokens, beside the
tutorial recipe (naive_app.py) and the machine's limits."""

from __future__ import annotations

from typing import Any, cast

from harness import BENCH, BIN, DRAIN, MAIL, Bench, load, percentile, wait_until

TITLE = "overview: Notifier beside the tutorial recipe and the machine's limits"


def notifier(bench: Bench) -> dict[str, Any]:
    mail = MAIL
    web, base = bench.web("notifier-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    try:
        r: dict[str, Any] = {"ingress": bench.ingress(base, mail)}
        r["captcha_pairs"] = load(
            "closed", f"{base}/v1/sms/captcha", header=bench.headers, conns=16, seconds=5,
            body='{"phone": "+86138{p}", "purpose": "bench"}',
            then_url=f"{base}/v1/sms/captcha/verify",
            then_body='{"phone": "+86138{p}", "purpose": "bench", "code": "000000"}',
        )  # fmt: skip
        r["upload_tokens"] = load(
            "closed", f"{base}/v1/uploads/qiniu/token", header=bench.headers, conns=16,
            seconds=5, body='{"bucket": "bench", "key": "u/{n}.png", "fsize_limit": 1048576}',
        )  # fmt: skip
        bench.reset()
        bench.queue(base, mail)
        r["drain"] = bench.drain(bench.worker("notifier-worker", "celery_app"))
        bench.reset()
        worker = bench.worker("notifier-worker-e2e", "celery_app")
        wait_until(lambda: "ready." in worker.log.read_text(), 60, "the worker")
        sent = load(
            "open", f"{base}/v1/mail", body=mail, header=bench.headers, rate=100, seconds=10
        )
        wait_until(lambda: bench.sink_db.hlen("bench:arrivals") >= len(sent["sent"]), 120, "e2e")
        # redis-py types a reply as bytes or str alike; this client (no decode_responses)
        # answers bytes.
        answered = cast(dict[bytes, bytes], bench.sink_db.hgetall("bench:arrivals"))
        arrivals = {k.decode(): float(v) for k, v in answered.items()}
        e2e = [arrivals[i] - at for i, at in sent["sent"].items()]
        r["end_to_end"] = {
            "requests": len(e2e), "errors": sent["errors"],
            "p50_ms": percentile(e2e, 0.5) * 1000, "p99_ms": percentile(e2e, 0.99) * 1000,
        }  # fmt: skip
        worker.stop()
        return {"notifier": r}
    finally:
        web.stop()


def naive(bench: Bench) -> dict[str, Any]:
    mail = '{"to": ["u{u}@example.com"], "subject": "Bench {u}", "text": "Hello from the bench."}'
    web, base = bench.web("naive-web", [str(BIN / "gunicorn"), "-w", "2", "naive_app:app"], BENCH)
    try:
        r = {"ingress": bench.ingress(base, mail, auth=False)}
        bench.reset()
        bench.queue(base, mail, auth=False)
        r["drain"] = bench.drain(bench.worker("naive-worker", "naive_app.celery", BENCH))
        return {"naive": r}
    finally:
        web.stop()


def limits(bench: Bench) -> dict[str, Any]:
    argv = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-k",
        "gthread",
        "--threads",
        "4",
        "limit_app:app",
    ]
    web, base = bench.web("limit-web", argv, BENCH)
    try:
        r = {"ingress_lpush": bench.ingress(base, '{"n": {n}}', auth=False)}
    finally:
        web.stop()
    bench.reset()
    r["smtplib_one_connection"] = bench.smtplib_drain()
    return {"limits": r}


def run(bench: Bench) -> dict[str, Any]:
    """Notifier's ingress, drain, end to end, captchas and tokens; the recipe's; the limits."""
    return {"overview": {**notifier(bench), **naive(bench), **limits(bench)}}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The overview's figures (bench/README.md keeps the earlier runs')."""
    n, b, lim = r["notifier"], r["naive"], r["limits"]

    def ing(r: dict[str, Any]) -> str:
        errors = sum(r["errors"].values())
        spread = "/".join(str(x) for x in r["runs_rps"])
        return (
            f"{r['rps']:8.0f} req/s  p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms"
            f"  errors {errors}  (runs {spread})"
        )

    rows = [
        ("ingress POST /v1/mail, 16 conns, median of 3 x 10 s", ""),
        ("  notifier", ing(n["ingress"])),
        ("  naive recipe", ing(b["ingress"])),
        ("  bare Flask + LPUSH (limit)", ing(lim["ingress_lpush"])),
        (f"drain {DRAIN} queued mails, 1 worker x 2", ""),
        ("  notifier", f"{n['drain']['mails_per_s']:8.0f} mails/s  SMTP connections {n['drain']['smtp_connections']}"),
        ("  naive recipe", f"{b['drain']['mails_per_s']:8.0f} mails/s  SMTP connections {b['drain']['smtp_connections']}"),
        ("  one smtplib connection (limit)", f"{lim['smtplib_one_connection']['mails_per_s']:8.0f} mails/s  SMTP connections 1"),
        ("end to end at 100 req/s, 10 s", f"p50 {n['end_to_end']['p50_ms']:6.1f} ms  p99 {n['end_to_end']['p99_ms']:6.1f} ms  ({n['end_to_end']['requests']} mails)"),
        ("captcha send + verify pairs", f"{n['captcha_pairs']['rps']:8.0f} pairs/s  p99 {n['captcha_pairs']['p99_ms']:6.1f} ms"),
        ("upload tokens", f"{n['upload_tokens']['rps']:8.0f} tokens/s  p99 {n['upload_tokens']['p99_ms']:6.1f} ms"),
    ]  # fmt: skip
    ratios = [
        ("ingress vs naive", n["ingress"]["rps"] / b["ingress"]["rps"]),
        ("drain vs naive", n["drain"]["mails_per_s"] / b["drain"]["mails_per_s"]),
        ("drain vs one smtplib connection", n["drain"]["mails_per_s"] / lim["smtplib_one_connection"]["mails_per_s"]),
    ]  # fmt: skip
    lines = [f"{label:42} {value}" for label, value in rows]
    lines += [f"{label:42} {value:8.2f}x" for label, value in ratios]
    return "\n".join(lines)

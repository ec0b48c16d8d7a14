"""SMS notifications (issue #37): their drain through a far Twilio beside one on loopback, a
captcha behind a backlog of them, and the ingress of POST /v1/sms beside POST /v1/mail."""

from __future__ import annotations

from functools import partial
from typing import Any

from harness import BACKLOG, BIN, DRAIN, MAIL, REPEATS, SMS, TWILIO_MS, Bench, beside, size

TITLE = "SMS notifications"
PATH = "/v1/sms"


def run(bench: Bench) -> dict[str, Any]:
    """The default deployment's workers (the Procfile's worker once per core) drain queued SMS
    notifications to a Twilio on loopback and to one 200 ms away, in turns, the median of
    three each; then a captcha is posted behind a backlog of them (Twilio 200 ms away); then
    each route's ingress, in turns."""
    near = {**bench.env, "NOTIFIER_TWILIO_BASE_URL": f"http://127.0.0.1:{bench.near_twilio_port}"}
    web, base = bench.web("sms-web", [str(BIN / "gunicorn"), "notifier:create_app()"])
    processes, threads = size(bench.env)
    r: dict[str, Any] = {"processes": processes, "threads": threads}
    try:
        # Near and far in turns, REPEATS times each, so the machine's noise falls on both alike.
        drains: dict[str, list[dict[str, Any]]] = {"sms_loopback": [], "sms_far": []}
        for n in range(REPEATS):
            for label, env in [("sms_loopback", near), ("sms_far", bench.env)]:
                workers = partial(bench.workers, f"sms-{label}-{n}", env)
                drains[label].append(bench.texts(base, DRAIN, workers, path=PATH, body=SMS))
        for label, runs in drains.items():
            runs.sort(key=lambda t: t["per_s"])
            r[label] = {**runs[len(runs) // 2], "runs_per_s": [round(t["per_s"]) for t in runs]}

        def notifications_arrived() -> int:  # the backlog's numbers, not the captchas'
            found = bench.sink_db.hscan_iter("bench:sms", match="+86138*", count=1000)
            return sum(1 for _ in found)

        r["captcha_behind_sms"] = bench.captcha_behind(
            base, partial(bench.workers, "sms-backlog", bench.env), notifications_arrived,
            path=PATH, body=SMS,
        )  # fmt: skip
        found = bench.ingresses(base, {"/v1/mail": MAIL, PATH: SMS})
        r["ingress_mail"], r["ingress_sms"] = found["/v1/mail"], found[PATH]
    finally:
        web.stop()
    return {"sms": r}


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The SMS figures beside those of the baseline run."""
    near, far, behind = r["sms_loopback"], r["sms_far"], r["captcha_behind_sms"]
    mail, sms = r["ingress_mail"], r["ingress_sms"]

    def texts(t: dict[str, Any]) -> str:
        runs = "/".join(str(n) for n in t["runs_per_s"])
        return f"{t['per_s']:.0f}/s ({t['connections']} HTTP conns; runs {runs})"

    def ing(x: dict[str, Any]) -> str:
        runs = "/".join(str(n) for n in x["runs_rps"])
        return f"{x['rps']:.0f} req/s  p99 {x['p99_ms']:.1f} ms  (runs {runs})"

    target = TWILIO_MS / 1000 + 0.5
    rows = [
        ("worker processes x threads", f"{r['processes']} x {r['threads']}", "size"),
        (f"{DRAIN} SMS notifications, Twilio on loopback, median of {REPEATS}", texts(near), "sms_loopback"),
        (f"{DRAIN} SMS notifications, Twilio {TWILIO_MS} ms away, in turns", texts(far), "sms_far"),
        ("  far / loopback (target >= 0.70)", f"{far['per_s'] / near['per_s']:.2f}", "sms_ratio"),
        (f"captcha behind {BACKLOG} SMS, Twilio {TWILIO_MS} ms (target < {target:.1f} s)", f"p50 {behind['p50_s']:.2f} s  max {behind['max_s']:.2f} s  ({behind['still_queued']} SMS still queued)", "captcha_behind_sms_s"),
        ("ingress POST /v1/mail, 16 conns, median of 3 x 10 s", ing(mail), "ingress_mail"),
        ("ingress POST /v1/sms, the same, in turns with it", ing(sms), "ingress_sms"),
        ("  sms / mail", f"{sms['rps'] / mail['rps']:.2f}", "ingress_ratio"),
    ]  # fmt: skip
    return beside(rows, before)

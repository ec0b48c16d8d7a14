"""Mail through Amazon SES, and SES's events back through Amazon SNS (issue #38)."""

from __future__ import annotations

import json
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Any

import requests
from harness import (
    BENCH,
    BIN,
    DRAIN,
    LOGS,
    MAIL,
    Bench,
    Proc,
    beside,
    has_written,
    rate,
    size,
    wait_until,
)

from notifier.embedded import free_port
from notifier.stores.notifications.keys import record_key
from tests.support.peers import ses, ses_events, sns

TITLE = "mail through SES, its events through SNS"
SES_MS = 50  # SES's answer time from a deployment in its region
EVENTS = 1000  # signed deliveries, posted at once
POSTERS = 64  # connections they are posted on


def run(bench: Bench) -> dict[str, Any]:
    """The Procfile's worker once per core draining the same mails through the loopback SMTP
    sink and through a local SES over HTTPS answering after SES_MS (it checks each request's
    SigV4 signature), then EVENTS signed SNS deliveries of those mails posted at once to the
    web, the SNS signing certificate served over HTTPS at an SNS host name."""
    folder = LOGS / "ses"
    folder.mkdir(exist_ok=True)
    pki = sns.Pki.make(folder)
    port = free_port()
    sink_db = f"redis://127.0.0.1:{bench.redis_port}/15"
    argv = [sys.executable, str(BENCH / "ses_sink.py"), str(port), sink_db, str(SES_MS),
            str(pki.server_chain(("localhost",)))]  # fmt: skip
    sink = Proc("ses-sink", argv, dict(os.environ))
    wait_until(partial(has_written, sink, "ses ready"), 10, "the SES sink")
    env = {
        **bench.env,
        "NOTIFIER_MAIL_PROVIDERS": "ses",
        "NOTIFIER_SES_REGION": ses.REGION,
        "NOTIFIER_SES_ACCESS_KEY_ID": ses.ACCESS_KEY_ID,
        "NOTIFIER_SES_SECRET_ACCESS_KEY": ses.SECRET_ACCESS_KEY,
        "NOTIFIER_SES_CONFIGURATION_SET": ses.CONFIGURATION_SET,
        "NOTIFIER_SES_ENDPOINT_URL": f"https://localhost:{port}",
        "NOTIFIER_SES_TOPIC_ARNS": sns.TOPIC,
        "REQUESTS_CA_BUNDLE": str(pki.ca_file),  # the SES sink's CA, as a private CA is trusted
    }
    processes, threads = size(bench.env)
    r: dict[str, Any] = {"processes": processes, "threads": threads}
    with sns.running(sns.SnsPeer(pki)) as peer:
        web_env = {**env, **sns.loopback_env(peer, pki)}
        web, base = bench.web("ses-web", [str(BIN / "gunicorn"), "notifier:create_app()"],
                              env=web_env)  # fmt: skip
        try:
            for label, drain_env in [("drain_smtp", bench.env), ("drain_ses", env)]:
                bench.reset()
                bench.queue(base, MAIL)
                r[label] = bench.drain(bench.workers(f"ses-{label}", drain_env))
            r["events"] = _events(bench, base, pki, peer)
        finally:
            web.stop()
            sink.stop()
    return {"ses": r}


def _events(bench: Bench, base: str, pki: sns.Pki, peer: sns.SnsPeer) -> dict[str, Any]:
    """EVENTS of the drained mails' deliveries, signed as SNS signs, posted at once on POSTERS
    connections: events a second from the first post to the last answer, the certificate
    fetches that took, and how many records moved to delivered."""
    ids: dict[bytes, bytes] = bench.sink_db.hgetall("bench:ses_ids")  # type: ignore[assignment]
    taken = [(m.decode(), *json.loads(v)) for m, v in sorted(ids.items())[:EVENTS]]
    bodies = [
        ses_events.signed(
            ses_events.event("Delivery", m, [to], ses_events.delivery([to]), notification_id=n),
            pki.signing_key,
        )
        for m, to, n in taken
    ]
    local = threading.local()

    def post(body: bytes) -> int:
        if not hasattr(local, "session"):
            local.session = requests.Session()
        answer = local.session.post(
            f"{base}/v1/receipts/ses", data=body, timeout=60,
            headers={"Content-Type": "text/plain; charset=UTF-8",
                     "x-amz-sns-message-type": "Notification"},
        )  # fmt: skip
        status: int = answer.status_code
        return status

    started = time.perf_counter()
    with ThreadPoolExecutor(POSTERS) as pool:
        statuses = list(pool.map(post, bodies))
    took = time.perf_counter() - started
    delivered = sum(bench.state.hget(record_key(n), "status") == b"delivered" for _, _, n in taken)
    return {
        "events": len(bodies),
        "per_s": len(bodies) / took,
        "answers": {str(s): statuses.count(s) for s in sorted(set(statuses))},
        "certificate_fetches": len(peer.requests_for(sns.CERT_PATH)),
        "delivered": delivered,
    }


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """SES's drain beside the loopback SMTP one's, and the events' rate."""
    near, far, events = r["drain_smtp"], r["drain_ses"], r["events"]
    answers = ", ".join(f"{n} x {s}" for s, n in events["answers"].items())
    rows = [
        ("worker processes x threads", f"{r['processes']} x {r['threads']}", "size"),
        (f"drain of {DRAIN}, SMTP relay on loopback", rate(near), "drain_smtp"),
        ("  worker CPU a mail", f"{near['worker_ms_a_mail']:.2f} ms", "worker_ms_smtp"),
        (f"drain of {DRAIN}, SES {SES_MS} ms away (HTTPS, boto3)",
         f"{far['mails_per_s']:.0f} mails/s ({far['smtp_connections']} HTTPS conns)", "drain_ses"),
        ("  worker CPU a mail", f"{far['worker_ms_a_mail']:.2f} ms", "worker_ms_ses"),
        ("  SES / SMTP on loopback (target >= 0.70)",
         f"{far['mails_per_s'] / near['mails_per_s']:.2f}", "ses_ratio"),
        (f"{events['events']} signed SNS deliveries posted at once",
         f"{events['per_s']:.0f} events/s ({answers})", "events"),
        ("  certificate fetches (one a web process at most)",
         str(events["certificate_fetches"]), "certificate_fetches"),
        ("  records moved to delivered", str(events["delivered"]), "delivered"),
    ]  # fmt: skip
    return beside(rows, before)

"""Replication: the ingress with WAIT for one replica beside none, and a failover under load."""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

from harness import BIN, LOGS, MAIL, Bench, Proc, beside, wait_until

from notifier.embedded import free_port, redis_server_binary

TITLE = "replication"


def run(bench: Bench) -> dict[str, Any]:
    """The ingress with WAIT for one replica beside none, and a failover under load."""
    replica_port = free_port()
    replica = Proc(
        "replica",
        [redis_server_binary(), "--port", str(replica_port), "--bind", "127.0.0.1",
         "--save", "", "--appendonly", "no", "--dir", str(LOGS),
         "--replicaof", "127.0.0.1", str(bench.redis_port)],
        dict(os.environ),
    )  # fmt: skip
    r: dict[str, Any] = {}
    try:
        wait_until(lambda: bench.state.info("replication")["connected_slaves"] == 1, 30, "sync")
        for replicas in (0, 1):
            bench.env["NOTIFIER_REDIS_MIN_REPLICAS"] = str(replicas)
            web, base = bench.web(f"web-replicas-{replicas}", [str(BIN / "gunicorn"),
                                                               "notifier:create_app()"])  # fmt: skip
            try:
                r[f"ingress_min_replicas_{replicas}"] = bench.ingress(base, MAIL)
            finally:
                web.stop()
    finally:
        bench.env.pop("NOTIFIER_REDIS_MIN_REPLICAS", None)
        replica.stop()
    r["failover"] = failover(bench)
    return {"sentinel": r}


def failover(bench: Bench, posters: int = 8, seconds: float = 12.0) -> dict[str, Any]:
    """A primary, two replicas and three sentinels; the primary SIGKILLed after a third of
    the run with ``posters`` clients posting mail: how long no 202 came, and what came."""
    from tests.support.peers.sentinel import SentinelGroup

    group = SentinelGroup(replicas=2).start()
    env = {**bench.env, "NOTIFIER_REDIS_URL": group.url()}
    saved, bench.env = bench.env, env
    answers: list[tuple[float, float, int]] = []
    try:
        web, base = bench.web("web-sentinel", [str(BIN / "gunicorn"), "notifier:create_app()"])
        worker = bench.worker("worker-sentinel", "celery_app", env=env)
        try:
            stop = time.monotonic() + seconds

            def post() -> None:
                while time.monotonic() < stop:
                    started = time.monotonic()
                    try:
                        bench.call(f"{base}/v1/mail", MAIL.replace("{u}", uuid.uuid4().hex)
                                  .replace("{n}", "0").encode())  # fmt: skip
                        status = 202
                    except Exception as e:  # urllib raises HTTPError for a 503
                        status = int(getattr(e, "code", 0))
                    answers.append((started, time.monotonic() - started, status))

            import threading

            threads = [threading.Thread(target=post) for _ in range(posters)]
            for thread in threads:
                thread.start()
            time.sleep(seconds / 3)  # load before the kill: the run is a fixed length
            old, killed = group.kill_primary()
            promoted = group.wait_promoted(old)
            for thread in threads:
                thread.join()
        finally:
            worker.stop()
            web.stop()
    finally:
        bench.env = saved
        group.stop()
    after = [a for a in answers if a[0] > killed and a[2] == 202]
    return {
        "requests": len(answers),
        "statuses": {str(c): sum(1 for a in answers if a[2] == c) for c in {a[2] for a in answers}},
        "promoted_after_s": promoted - killed,
        "no_202_s": (after[0][0] - killed) if after else None,
        "max_answer_s": max(a[1] for a in answers),
    }  # fmt: skip


def table(r: dict[str, Any], before: dict[str, Any]) -> str:
    """The replication figures beside those of the baseline run."""

    def ing(i: dict[str, Any]) -> str:
        return (
            f"{i['rps']:.0f} req/s  p99 {i['p99_ms']:.1f} ms  ({'/'.join(map(str, i['runs_rps']))})"
        )

    f = r["failover"]
    rows = [
        ("ingress POST /v1/mail, NOTIFIER_REDIS_MIN_REPLICAS=0", ing(r["ingress_min_replicas_0"]), "ingress_0"),
        ("  =1, WAIT for a local replica", ing(r["ingress_min_replicas_1"]), "ingress_1"),
        ("failover: kill to promotion", f"{f['promoted_after_s']:.1f} s", "promoted_s"),
        ("  kill to the first 202 again (target < promotion + 5 s)", f"{f['no_202_s']:.1f} s", "no_202_s"),
        ("  answers during the run, slowest", f"{f['statuses']}  max {f['max_answer_s'] * 1000:.0f} ms", "answers"),
    ]  # fmt: skip
    return beside(rows, before)

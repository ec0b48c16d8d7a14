"""Notifier's benchmark: ingress, drain, end to end, captchas and upload tokens, beside the
tutorial recipe (naive_app.py) and the machine's limits, in one run on one machine.

    bench/run            # every scenario, about ten minutes; writes bench/results/latest.json
    bench/run lanes      # only the lanes figures (issue #12)
    bench/run batch      # only the batch figures (issue #16)
    bench/run sentinel   # only the replication figures: the price of WAIT, a failover (issue #22)
    bench/run cores      # only the every-core figures (issue #22)
    bench/run dkim       # only the signing figures (issue #25)
    bench/run cpu        # only the workers' CPU a mail (issue #36)
    bench/run sms        # only the SMS notifications' figures (issue #37)
    bench/run ses        # only mail through SES and its events through SNS (issue #38)
    bench/run console    # only the console's message log and timelines (issue #40)

It starts its own Redis, an SMTP sink (sink.py) and each service the way its Procfile does;
the load comes from loadgen.py in a process of its own. It prints figures beside those of
bench/baseline.json; it asserts nothing. One module a scenario, in scenarios/: each has its
``TITLE``, ``run(bench)``, which returns its figures, and ``table(figures, before)``.
"""

from __future__ import annotations

import json
import os
import platform
import sys
import time

from harness import BENCH, LOGS, Bench
from scenarios import batch, console, cores, cpu, dkim, lanes, overview, sentinel, ses, sms, start

# In the order a whole run takes them.
SCENARIOS = {
    "overview": overview,
    "lanes": lanes,
    "batch": batch,
    "sentinel": sentinel,
    "cores": cores,
    "dkim": dkim,
    "cpu": cpu,
    "sms": sms,
    "ses": ses,
    "console": console,
    "start": start,
}


def main() -> None:
    only = sys.argv[1] if sys.argv[1:] else None  # one scenario only
    if only is not None and only not in SCENARIOS:
        raise SystemExit(f"usage: bench/run [{'|'.join(SCENARIOS)}]")
    chosen = [SCENARIOS[only]] if only else list(SCENARIOS.values())
    bench = Bench()
    figures: dict[str, object] = {}
    try:
        for scenario in chosen:
            figures.update(scenario.run(bench))
    finally:
        bench.close()
    baseline = json.loads((BENCH / "baseline.json").read_text())
    results = {
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **figures,
    }  # fmt: skip
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    (out / "latest.json").write_text(json.dumps(results, indent=2))
    for name, scenario in SCENARIOS.items():
        if scenario in chosen:
            was = baseline.get(name, {})
            print(
                f"{scenario.TITLE} (before: {was.get('at', '-')}, {was.get('what', 'no run yet')})"
            )
            print(scenario.table(results[name], was), end="\n\n")
    print(f"figures: {out / 'latest.json'}   logs: {LOGS}")


if __name__ == "__main__":
    main()

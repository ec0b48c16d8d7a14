"""The alert rules in ops/prometheus: each alert has a unit case that fires it. (That promtool
takes the rules and their cases pass is tests/integration/test_monitoring.py's: it needs
Prometheus, and tests/unit needs no system package.)"""

from __future__ import annotations

from pathlib import Path

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


def test_every_alert_has_a_case_that_fires() -> None:
    rules = (RULES / "alerts.yml").read_text()
    cases = (RULES / "alerts_test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 11
    for alert in alerts:
        assert f"alertname: {alert}\n        exp_alerts:\n          - exp_labels" in cases, alert

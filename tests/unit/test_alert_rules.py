"""The alert rules in ops/prometheus: valid for promtool, and each alert's unit cases pass."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.peers.prometheus import promtool

RULES = Path(__file__).resolve().parents[2] / "ops" / "prometheus"


@pytest.mark.prometheus
def test_the_rules_are_valid_and_their_unit_cases_pass() -> None:
    checked = promtool("check", "rules", str(RULES / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULES / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_alert_has_a_case_that_fires() -> None:
    rules = (RULES / "alerts.yml").read_text()
    cases = (RULES / "alerts_test.yml").read_text()
    alerts = [line.split(":", 1)[1].strip() for line in rules.splitlines() if "- alert:" in line]
    assert len(alerts) == 11
    for alert in alerts:
        assert f"alertname: {alert}\n        exp_alerts:\n          - exp_labels" in cases, alert

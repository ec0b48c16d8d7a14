"""What an operator's Prometheus sees of the running stack: a clean scrape, latency histograms."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.support.harness.stack import Stack, address, new_phone, send
from tests.support.harness.wait import wait_for
from tests.support.peers.prometheus import PrometheusServer, promtool

pytestmark = [pytest.mark.integration, pytest.mark.prometheus]
OPS = Path(__file__).resolve().parents[2] / "ops"
RULES = OPS / "prometheus"


def test_the_alert_rules_are_valid_and_their_unit_cases_pass() -> None:
    checked = promtool("check", "rules", str(RULES / "alerts.yml"))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = promtool("test", "rules", str(RULES / "alerts_test.yml"))
    assert tested.returncode == 0, tested.stdout + tested.stderr


@pytest.fixture(scope="module")
def prometheus(stack: Stack) -> Iterator[PrometheusServer]:
    """A private Prometheus that scrapes the stack's web every second."""
    server = PrometheusServer([urlsplit(stack.base).netloc]).start()
    yield server
    server.stop()


def test_metrics_are_served_with_one_content_type_promtool_and_prometheus_take(
    stack: Stack, prometheus: PrometheusServer
) -> None:
    response = requests.get(f"{stack.base}/metrics", timeout=10)
    assert response.headers["Content-Type"].count("charset") == 1
    checked = promtool("check", "metrics", stdin=response.text)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    def scraped() -> dict[str, object] | None:
        targets = prometheus.active_targets()
        return targets[0] if targets and targets[0]["health"] == "up" else None

    target = wait_for(scraped, timeout=30, what="Prometheus to scrape the web")
    assert target["lastError"] == ""
    # Two scrapes at least, so a warning of the first would be in the log by now.
    wait_for(lambda: prometheus.query("count_over_time(up[1m]) >= 2"), what="a second scrape")
    log = prometheus.output()
    assert "duplicate parameter" not in log and "Invalid content type" not in log, log[-3000:]


def count_of(stack: Stack, series: str, **labels: str) -> float:
    """The value of one sample of the stack's /metrics (0 when it is not there)."""
    text = requests.get(f"{stack.base}/metrics", timeout=10).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == series and sample.labels == labels:
                return float(sample.value)
    return 0.0


def test_a_send_shows_in_the_latency_histograms_of_its_lane_and_kind(stack: Stack) -> None:
    mail = {"lane": "mail", "kind": "mail"}
    code = {"lane": "captcha", "kind": "sms_captcha"}
    before = [
        count_of(stack, "notifier_delivery_seconds_count", **labels) for labels in (mail, code)
    ]
    stack.wait_status(send(stack, to=[address("latency")]), "sent")
    sms = stack.post("/v1/sms/captcha", {"phone": new_phone(), "purpose": "latency"})
    stack.wait_status(sms.json()["id"], "sent")
    after = [
        count_of(stack, "notifier_delivery_seconds_count", **labels) for labels in (mail, code)
    ]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]
    # Both were taken within a few seconds of their accept, and waited in their lanes.
    assert count_of(stack, "notifier_delivery_seconds_bucket", **mail, le="10.0") >= 1
    assert count_of(stack, "notifier_queue_wait_seconds_count", **code) >= 1
    text = requests.get(f"{stack.base}/metrics", timeout=10).text
    checked = promtool("check", "metrics", stdin=text)  # histograms as Prometheus lints them
    assert checked.returncode == 0, checked.stdout + checked.stderr


def exprs_of_the_dashboard_and_rules() -> list[str]:
    """Every PromQL expression the Grafana dashboard and the alert rules hold."""
    dashboard = json.loads((OPS / "grafana" / "notifier.json").read_text())
    exprs = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    rules = (OPS / "prometheus" / "alerts.yml").read_text()
    # Each rule's expr: one line, or a folded block (>-) up to the next key.
    for one, block in re.findall(r"expr: (?!>-)(.+)|expr: >-\n((?:          .+\n)+)", rules):
        exprs.append(one or " ".join(block.split()))
    return exprs


def test_every_series_the_dashboard_and_alerts_name_is_served_and_every_query_runs(
    stack: Stack, prometheus: PrometheusServer
) -> None:
    stack.wait_status(send(stack, to=[address("dashboard")]), "sent")
    text = requests.get(f"{stack.base}/metrics", timeout=10).text
    served = {family.name for family in text_string_to_metric_families(text)}
    exprs = exprs_of_the_dashboard_and_rules()
    assert len(exprs) >= 26  # 16 panels' targets and 10 rules
    named = {
        re.sub(r"_(bucket|sum|count|total)$", "", name)
        for expr in exprs
        for name in re.findall(r"\bnotifier_[a-z_]+", expr)
    }
    assert named - served == set()
    for expr in exprs:  # each parses and evaluates on a real Prometheus scraping the stack
        answer = requests.get(f"{prometheus.base}/api/v1/query", params={"query": expr}, timeout=5)
        assert answer.json()["status"] == "success", (expr, answer.text)

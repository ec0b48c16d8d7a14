"""What an operator's Prometheus sees of the running stack: a clean scrape, latency histograms."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.prometheus import PrometheusServer, promtool
from tests.support.stack import Stack
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration


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

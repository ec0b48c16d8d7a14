"""A private Prometheus server (the Debian package's ``prometheus``) and ``promtool``.

Its config, storage and log live in a fresh temp dir; it listens on a free loopback port and
scrapes the targets it is given every second, logging at debug level, where Prometheus says
why it could not take a scrape's ``Content-Type``.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import requests

from notifier.embedded import free_port
from tests.support.harness.processes import start_server, stop_group
from tests.support.peers import system

PROMETHEUS = "prometheus"
PROMTOOL = "promtool"
NOT_INSTALLED = (
    "Prometheus is not installed (no prometheus or promtool on PATH): install the Debian "
    'package with `apt-get install prometheus`, or deselect these tests with `-m "not prometheus"`'
)


def promtool(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """Run ``promtool`` with ``args`` (and ``stdin``); its exit status and output."""
    system.require("prometheus", "promtool")
    if shutil.which(PROMTOOL) is None:
        raise AssertionError(NOT_INSTALLED)
    return subprocess.run(
        [PROMTOOL, *args], input=stdin, capture_output=True, text=True, timeout=60
    )


class PrometheusServer:
    """``prometheus`` scraping ``targets`` (``host:port``) at ``/metrics`` every second."""

    def __init__(self, targets: list[str]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.targets = targets
        self.dir = Path(tempfile.mkdtemp(prefix="notifier-prometheus-"))
        self.log = self.dir / "prometheus.log"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> PrometheusServer:
        """Write its config and start it; wait until it is ready."""
        system.require("prometheus", "Prometheus")
        if shutil.which(PROMETHEUS) is None:
            raise AssertionError(NOT_INSTALLED)
        config = self.dir / "prometheus.yml"
        targets = ", ".join(f'"{t}"' for t in self.targets)
        config.write_text(
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            f"scrape_configs:\n  - job_name: notifier\n    static_configs: [{{targets: [{targets}]}}]\n"
        )
        self.process = start_server(
            [
                PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={self.dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=debug",
            ],
            output=self.log,
            ready=self._ready,
            what=f"Prometheus on port {self.port}",
            timeout=30,
            logs=[self.log],
        )  # fmt: skip
        return self

    def _ready(self, process: subprocess.Popen[bytes]) -> bool:
        if process.poll() is not None:
            raise AssertionError(f"prometheus exited:\n{self.log.read_text()[-3000:]}")
        try:
            return requests.get(f"{self.base}/-/ready", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def active_targets(self) -> list[dict[str, Any]]:
        """The scrape targets as its HTTP API shows them (``health``, ``lastError``, …)."""
        answer = requests.get(f"{self.base}/api/v1/targets", timeout=5).json()
        found: list[dict[str, Any]] = answer["data"]["activeTargets"]
        return found

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's result vector."""
        answer = requests.get(f"{self.base}/api/v1/query", params={"query": expr}, timeout=5)
        found: list[dict[str, Any]] = answer.json()["data"]["result"]
        return found

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process is not None:
            stop_group(self.process, timeout=15)
            self.process = None
        shutil.rmtree(self.dir, ignore_errors=True)

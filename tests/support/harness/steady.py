"""Mail posted at a steady rate while a test takes a server away, every answer kept."""

from __future__ import annotations

import threading
import time

import requests

from tests.support.harness.clients import auth
from tests.support.harness.stack import Stack, address


class SteadyMail:
    """Posts one mail every ``every`` seconds from a thread, and keeps every answer."""

    def __init__(self, stack: Stack, every: float = 0.05, timeout: float = 5.0) -> None:
        """``timeout``: how long a request may take before it counts as hung (status 0)."""
        self.stack, self.every, self.timeout = stack, every, timeout
        self.answers: list[tuple[float, float, int, str | None, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SteadyMail:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            to = address("steady")
            started = time.monotonic()
            try:
                answer = requests.post(
                    f"{self.stack.base}/v1/mail",
                    json={"to": [to], "subject": "Steady", "text": "Plain"},
                    headers=auth(),
                    timeout=self.timeout,
                )
                status, found = answer.status_code, answer.json().get("id")
            except requests.RequestException:
                status, found = 0, None
            took = time.monotonic() - started
            self.answers.append((started, took, status, found, to))
            self._stop.wait(max(0.0, self.every - took))

    def accepted_after(self, moment: float) -> list[tuple[float, float, int, str | None, str]]:
        return [a for a in self.answers if a[0] > moment and a[2] == 202]

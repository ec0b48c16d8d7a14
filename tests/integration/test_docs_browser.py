"""/docs in a real headless Chromium: the page renders every route from /openapi.json, offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from tests.integration.conftest import Stack

pytestmark = [pytest.mark.integration, pytest.mark.browser]


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError(
            'Chromium is not installed: `apt-get install chromium`, or deselect with -m "not browser"'
        )
    return found


def test_docs_lists_every_route(stack: Stack, tmp_path: Path) -> None:
    spec = requests.get(f"{stack.base}/openapi.json", timeout=10).json()
    routes = {f"{m.upper()} {p}" for p, methods in spec["paths"].items() for m in methods}
    shot = tmp_path / "docs.png"
    common = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
        "--no-first-run", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--virtual-time-budget=10000",
    ]  # fmt: skip
    dom = subprocess.run(
        [*common, "--dump-dom", f"{stack.base}/docs"], capture_output=True, text=True, timeout=120
    ).stdout
    shown = set(re.findall(r'data-route="([^"]+)"', dom))
    assert shown == routes
    assert "Could not load" not in dom
    subprocess.run(
        [*common, f"--screenshot={shot}", "--window-size=1200,1600", f"{stack.base}/docs"],
        capture_output=True,
        timeout=120,
    )
    assert shot.stat().st_size > 10_000

"""Headless Chromium driven over the DevTools protocol, through a pipe (no extra package).

``--remote-debugging-pipe`` makes Chromium read commands on file descriptor 3 and answer on 4,
one JSON message a line ending in NUL.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from tests.support.peers import system


def chromium_binary() -> str:
    """Debian's Chromium; a clear failure when it is missing."""
    system.require("browser", "Chromium")
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise AssertionError(
            'Chromium is not installed: `apt-get install chromium`, or deselect with -m "not browser"'
        )
    return found


class Page:
    """One tab of a headless Chromium of its own."""

    def __init__(self, profile: Path) -> None:
        to_browser, self._commands = os.pipe()
        self._answers, from_browser = os.pipe()
        flags = [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            "--remote-debugging-pipe", f"--user-data-dir={profile}",
        ]  # fmt: skip
        # The shell puts the pipes where Chromium looks for them, then becomes Chromium.
        script = f'exec "$0" "$@" 3<&{to_browser} 4>&{from_browser}'
        self.process = subprocess.Popen(
            ["bash", "-c", script, chromium_binary(), *flags],
            pass_fds=(to_browser, from_browser),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        os.close(to_browser)
        os.close(from_browser)
        self._buffer = b""
        self._next_id = 0
        target = self._send("Target.createTarget", {"url": "about:blank"})["targetId"]
        attached = self._send("Target.attachToTarget", {"targetId": target, "flatten": True})
        self._session: str | None = attached["sessionId"]

    def close(self) -> None:
        """End Chromium."""
        self.process.kill()
        self.process.wait()
        os.close(self._commands)
        os.close(self._answers)

    def _send(self, method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
        self._next_id += 1
        message: dict[str, Any] = {"id": self._next_id, "method": method, "params": params or {}}
        if getattr(self, "_session", None):
            message["sessionId"] = self._session
        os.write(self._commands, json.dumps(message).encode() + b"\0")
        while True:  # events come in between: read on to our answer
            answer = self._read()
            if answer.get("id") == self._next_id:
                if "error" in answer:
                    raise AssertionError(f"{method}: {answer['error']}")
                result: dict[str, Any] = answer["result"]
                return result

    def _read(self) -> dict[str, Any]:
        while b"\0" not in self._buffer:
            chunk = os.read(self._answers, 1 << 16)
            if not chunk:
                raise AssertionError("Chromium closed the DevTools pipe")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\0")
        parsed: dict[str, Any] = json.loads(line)
        return parsed

    def goto(self, url: str) -> None:
        """Load ``url``."""
        self._send("Page.navigate", {"url": url})

    def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (promises are awaited)."""
        answer = self._send(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in answer:
            raise AssertionError(f"{expression}: {answer['exceptionDetails']}")
        return answer["result"].get("value")

    def choose_file(self, selector: str, path: Path) -> None:
        """Choose ``path`` in the file input ``selector``, as a user does: its change event
        fires."""
        root = self._send("DOM.getDocument")["root"]["nodeId"]
        node = self._send("DOM.querySelector", {"nodeId": root, "selector": selector})["nodeId"]
        self._send("DOM.setFileInputFiles", {"files": [str(path)], "nodeId": node})

    def wait_for(self, expression: str, *, timeout: float = 20.0) -> Any:
        """Evaluate ``expression`` until it is truthy; its value."""
        deadline = time.monotonic() + timeout
        # An element found is true: elements do not travel back as values.
        check = f"(() => {{ const v = ({expression}); return v instanceof Node ? true : v; }})()"
        while not (value := self.evaluate(check)):
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {expression}; last: {value!r}")
            # A short pause between looks, inside the page: the page goes on meanwhile.
            self.evaluate("new Promise((done) => setTimeout(() => done(true), 50))")
        return value

    def screenshot(self, path: Path, width: int = 1280, *, whole: bool = True) -> None:
        """Save the page, ``width`` pixels wide, as a PNG at ``path``: all of it, or
        (``whole=False``) its first 800 pixels."""
        for height in (800, None if whole else 800):  # laid out at the width, then its height
            height = height or int(self.evaluate("document.documentElement.scrollHeight"))
            self._send(
                "Emulation.setDeviceMetricsOverride",
                {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False},
            )
        shot = self._send("Page.captureScreenshot", {"format": "png"})
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))

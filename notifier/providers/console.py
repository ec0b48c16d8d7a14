"""Development providers that print what they would send."""

from __future__ import annotations

import sys
from typing import TextIO

from notifier.providers.base import OutgoingMail
from notifier.providers.mime import build_mime


class ConsoleMailProvider:
    """Print each mail, headers and body, to a stream (standard output by default)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Print the message as it would go over the wire."""
        mime = build_mime(message)
        stream = self._stream or sys.stdout
        rule = "-" * 72
        stream.write(f"{rule}\n{mime.as_string()}\n{rule}\n")
        stream.flush()
        return str(mime["Message-ID"])

    def close(self) -> None:
        """Nothing to release."""


class ConsoleSmsProvider:
    """Print each text message (development: this is where captcha codes and SMS show)."""

    name = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._count = 0

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        """Print the number, the sender when a client gives one, and the text."""
        stream = self._stream or sys.stdout
        source = "" if sender is None else f" from {sender}"
        stream.write(f"SMS to {to}{source}: {body}\n")
        stream.flush()
        self._count += 1
        return f"console-{self._count}"

    def close(self) -> None:
        """Nothing to release."""

"""Development mail: one ``.eml`` file a message in a folder, nothing sent."""

from __future__ import annotations

import os
from pathlib import Path

from notifier.errors import TransientProviderError
from notifier.providers.base import OutgoingMail
from notifier.providers.mime import build_mime


class OutboxMailProvider:
    """Write each mail to ``<directory>/<notification id>.eml``."""

    name = "outbox"

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Write the message atomically, so a reader never sees half a file."""
        mime = build_mime(message)
        path = self.directory / f"{message.notification_id}.eml"
        partial = path.with_suffix(".eml.part")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(mime.as_bytes())
            os.replace(partial, path)
        except OSError as e:
            raise TransientProviderError(f"cannot write {path}: {e}", provider=self.name) from e
        return str(mime["Message-ID"])

    def close(self) -> None:
        """Nothing to release."""

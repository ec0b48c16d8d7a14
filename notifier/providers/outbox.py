"""Development mail: one ``.eml`` file a message in a folder, nothing sent."""

from __future__ import annotations

import os
from pathlib import Path
from typing import ClassVar

from notifier.errors import TransientProviderError
from notifier.providers.base import OutgoingMail
from notifier.providers.dkim import DkimSigner
from notifier.providers.mime import build_wire
from notifier.settings import VendorSettings


class OutboxSettings(VendorSettings):
    """``NOTIFIER_OUTBOX_DIR``: the folder the mail goes to."""

    prefix: ClassVar[str] = "outbox"

    dir: Path = Path("outbox")


class OutboxMailProvider:
    """Write each mail to ``<directory>/<notification id>.eml``."""

    name = "outbox"

    def __init__(self, settings: OutboxSettings, *, dkim: DkimSigner | None = None) -> None:
        self.directory = settings.dir
        self._dkim = dkim

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Write the message atomically, so a reader never sees half a file."""
        wire = build_wire(message, self._dkim)  # the bytes SMTP would send
        path = self.directory / f"{message.notification_id}.eml"
        partial = path.with_suffix(".eml.part")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            partial.write_bytes(wire.data)
            os.replace(partial, path)
        except OSError as e:
            raise TransientProviderError(f"cannot write {path}: {e}", provider=self.name) from e
        return wire.message_id

    def close(self) -> None:
        """Nothing to release."""

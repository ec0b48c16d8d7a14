"""An SMS adapter of another package, written as a third party writes one: Acme, with settings
of its own (``NOTIFIER_ACME_*``).

:func:`install` registers it under the entry-point group ``notifier.sms_providers`` the way an
installed distribution does: its metadata in a folder on ``sys.path``, where
``importlib.metadata`` finds it.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import ClassVar

from pydantic import Field, SecretStr

from notifier.settings import Settings, Vendor, VendorSettings


class AcmeSettings(VendorSettings):
    """``NOTIFIER_ACME_API_KEY`` (required when acme is listed), ``_SENDER``, ``_REGIONS``."""

    prefix: ClassVar[str] = "acme"
    required: ClassVar[tuple[str, ...]] = ("api_key",)

    api_key: SecretStr | None = None
    sender: str = Field(default="Acme", min_length=1, max_length=11)
    # A list: JSON in its variable, as lists are in every setting.
    regions: list[str] = Field(default_factory=lambda: ["eu"])


class AcmeSmsProvider:
    """Keeps what it is asked to send."""

    name = "acme"

    def __init__(self, settings: AcmeSettings, *, threads: int) -> None:
        self.settings, self.threads = settings, threads
        self.sent: list[tuple[str, str]] = []
        self._ids = itertools.count(1)

    def send_sms(self, *, to: str, body: str) -> str:
        self.sent.append((to, body))
        return f"acme-{next(self._ids)}"

    def close(self) -> None:
        """Nothing to release."""


def _make(own: AcmeSettings, settings: Settings) -> AcmeSmsProvider:
    return AcmeSmsProvider(own, threads=settings.worker_concurrency)


vendor = Vendor(AcmeSettings, _make)


def install(folder: Path, target: str = f"{__name__}:vendor") -> Path:
    """Write the metadata of a distribution ``notifier-acme`` whose ``acme`` entry point is
    ``target``, into ``folder``: with ``folder`` on ``sys.path``, it is installed."""
    dist = folder / "notifier_acme-1.0.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: notifier-acme\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(f"[notifier.sms_providers]\nacme = {target}\n")
    return folder

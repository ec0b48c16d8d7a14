"""DKIM key pairs for the tests, made with the openssl command: a private key (PEM) and the
TXT record a domain publishes for it."""

from __future__ import annotations

import base64
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KeyPair:
    pem_file: Path
    record: str  # "v=DKIM1; k=rsa; p=<base64 of the public key>"

    @property
    def pem(self) -> str:
        return self.pem_file.read_text()


def key_pair(folder: Path, bits: int = 2048) -> KeyPair:
    """A new RSA key in ``folder``; the record that publishes its public half."""
    pem = folder / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(pem), str(bits)],
        check=True, capture_output=True,
    )  # fmt: skip
    public = subprocess.run(
        ["openssl", "rsa", "-in", str(pem), "-pubout", "-outform", "DER"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    return KeyPair(pem, f"v=DKIM1; k=rsa; p={base64.b64encode(public).decode()}")

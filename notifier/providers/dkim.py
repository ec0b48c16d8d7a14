"""DKIM signatures (RFC 6376) on the wire bytes of a mail, made with ``dkimpy``.

A mail is signed after :func:`notifier.providers.mime.build_wire` has made its final bytes (CRLF
lines, folded headers, encoded bodies), with the key of its From domain, or of the nearest
parent domain that has one (a key for ``example.com`` signs ``news.example.com``: relaxed
alignment, as DMARC allows). Canonicalisation is relaxed/relaxed, which survives the header
refolding and whitespace changes relays make. The headers signed are the ones a forger would
change (From, To, Cc, Reply-To, Subject, Date, Message-ID, the MIME headers, the unsubscribe
headers RFC 8058 requires to be signed), each named once more than the mail has it ("oversigned",
RFC 6376 5.4.2 and 8.15): a second Subject, From or List-Unsubscribe added on the way breaks the
signature, and so does a Reply-To, Cc or unsubscribe header the mail had none of. (A To the mail
had none of, as a mail to Bcc only, is left alone: some relays add ``To: undisclosed-recipients:;``.)
A mail from a domain without a key goes out unsigned.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from email.utils import parseaddr
from pathlib import Path

SIGNED = (
    b"from", b"to", b"cc", b"reply-to", b"subject", b"date", b"message-id", b"mime-version",
    b"content-type", b"content-transfer-encoding", b"list-unsubscribe",
    b"list-unsubscribe-post", b"auto-submitted",
)  # fmt: skip
# Signed even when the mail has none, so that none can be added: what a forger would add to
# redirect replies or unsubscribes. Relays add none of these.
OVERSIGNED_ABSENT = frozenset(
    {b"from", b"cc", b"reply-to", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"}
)


@dataclass(frozen=True)
class DkimKey:
    """One sending domain's selector and private key (PEM)."""

    selector: str
    private_key: bytes


MIN_RSA_BITS = 1024  # RFC 8301 3.2: "Signers MUST use RSA keys of at least 1024 bits"


def _rsa_bits(pem: bytes) -> int | None:
    """An RSA key's size in bits; None for a key of another kind (Ed25519, RFC 8463)."""
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    key = load_pem_private_key(pem, password=None)
    return key.key_size if isinstance(key, rsa.RSAPrivateKey) else None


class DkimError(ValueError):
    """A key that cannot sign; the message names the domain."""


class DkimSigner:
    """Signs mail with the key of its From domain."""

    def __init__(self, keys: Mapping[str, DkimKey]) -> None:
        self._keys = {domain.lower().rstrip("."): key for domain, key in keys.items()}
        for domain, key in self._keys.items():
            # Each key signs once now: one that cannot is found at start-up, not at a send.
            try:
                self._sign(b"From: a@" + domain.encode() + b"\r\n\r\nx\r\n", domain, key)
            except Exception as e:
                reason = " ".join(str(e).split())  # dkimpy's messages run over lines
                raise DkimError(f"{domain}: the private key cannot sign ({reason})") from None
            if (bits := _rsa_bits(key.private_key)) is not None and bits < MIN_RSA_BITS:
                # dkimpy signs with it, but RFC 8301 3.2 has verifiers refuse such a signature:
                # every mail would go out as if unsigned, which bulk senders may not do.
                raise DkimError(
                    f"{domain}: the private key has {bits} bits; RFC 8301 wants at least"
                    f" {MIN_RSA_BITS} (2048 advised), and verifiers refuse signatures of fewer"
                )

    def domain_for(self, sender: str) -> str | None:
        """The domain whose key signs mail from ``sender`` (an address or a mailbox), or None."""
        domain = parseaddr(sender)[1].rpartition("@")[2].lower().rstrip(".")
        while domain:
            if domain in self._keys:
                return domain
            domain = domain.partition(".")[2]
        return None

    def sign(self, data: bytes, sender: str, *, unsigned: frozenset[bytes] = frozenset()) -> bytes:
        """``data`` with a DKIM-Signature header in front, or as it is when no key applies;
        the headers named in ``unsigned`` (lower case) are left out of the signature: those the
        provider rewrites on the way (SES its own Message-ID and Date)."""
        domain = self.domain_for(sender)
        if domain is None:
            return data
        return self._sign(data, domain, self._keys[domain], unsigned) + data

    @staticmethod
    def _sign(
        data: bytes, domain: str, key: DkimKey, unsigned: frozenset[bytes] = frozenset()
    ) -> bytes:
        names = [line.split(b":", 1)[0].strip().lower() for line in _header_lines(data)]
        include = [
            name
            for name in SIGNED
            if name not in unsigned
            for _ in range(names.count(name) + (name in names or name in OVERSIGNED_ABSENT))
        ]
        # Imported on first use: dkimpy brings dnspython, 20 ms to import in every process that
        # loads the providers, where most deployments sign nothing.
        import dkim

        signature: bytes = dkim.sign(
            data,
            key.selector.encode(),
            domain.encode(),
            key.private_key,
            canonicalize=(b"relaxed", b"relaxed"),
            include_headers=include,
            linesep=b"\r\n",
        )
        return signature


def _header_lines(data: bytes) -> list[bytes]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [line for line in head.split(b"\r\n") if line and line[:1] not in (b" ", b"\t")]


def load_keys(entries: Mapping[str, Mapping[str, str]]) -> dict[str, DkimKey]:
    """Keys from ``NOTIFIER_DKIM_KEYS``'s entries: ``{"selector", "private_key_file"}`` or
    ``{"selector", "private_key"}`` (the PEM itself) a domain."""
    keys = {}
    for domain, entry in entries.items():
        if "private_key" in entry:
            pem = entry["private_key"].encode()
        else:
            try:
                pem = Path(entry["private_key_file"]).read_bytes()
            except OSError as e:
                raise DkimError(
                    f"{domain}: cannot read {entry['private_key_file']}: {e.strerror}"
                ) from None
        keys[domain] = DkimKey(entry["selector"], pem)
    return keys

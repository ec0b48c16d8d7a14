"""SendGrid's signed Event Webhook as a test meets it: events of mails the local SendGrid took,
with the fields SendGrid's "Event Webhook Reference" lists for each, posted as SendGrid posts
them (a JSON array, a CR LF after it) and signed as it signs them (ECDSA P-256 with SHA-256 over
the timestamp and the body; the public key as its console shows it, base64 of the DER).

:data:`DOCUMENTED` is SendGrid's own example of a signed post: the public key, the signature,
the timestamp and the exact payload of the official SDKs' shared test vector
(sendgrid/sendgrid-python ``test/unit/test_eventwebhook.py``, MIT License; the Node.js, C# and
Go SDKs test the same values); :data:`ANOTHER_KEY` is the other key those tests refuse it with.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from notifier.sendgrid_webhook import SIGNATURE, TIMESTAMP
from tests.support.peers.sendgrid import Sent


@dataclass(frozen=True)
class Example:
    """A signed post: the key it verifies with, its two headers' values and its body."""

    public_key: str
    signature: str
    timestamp: str
    payload: bytes


DOCUMENTED = Example(
    public_key="MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE83T4O/n84iotIvIW4mdBgQ/7dAfSmpqIM8kF9mN1flp"
    "VKS3GRqe62gw+2fNNRaINXvVpiglSI8eNEc6wEA3F+g==",
    signature="MEUCIGHQVtGj+Y3LkG9fLcxf3qfI10QysgDWmMOVmxG0u6ZUAiEAyBiXDWzM+uOe5W0JuG+luQAbPIq"
    "Hh89M15TluLtEZtM=",
    timestamp="1600112502",
    # json.dumps(..., sort_keys=True, separators=(",", ":")) + "\r\n", as the SDKs build it.
    payload=b'[{"email":"hello@world.com","event":"dropped","reason":"Bounced Address",'
    b'"sg_event_id":"ZHJvcC0xMDk5NDkxOS1MUnpYbF9OSFN0T0doUTRrb2ZTbV9BLTA",'
    b'"sg_message_id":"LRzXl_NHStOGhQ4kofSm_A.filterdrecv-p3mdw1-756b745b58-kmzbl-18-5F5FC76C'
    b'-9.0","smtp-id":"<LRzXl_NHStOGhQ4kofSm_A@ismtpd0039p1iad1.sendgrid.net>",'
    b'"timestamp":1600112492}]\r\n',
)
ANOTHER_KEY = (
    "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEqTxd43gyp8IOEto2LdIfjRQrIbsd4SXZkLW6jDutdhXSJCWHw8REntlo"
    "7aNDthvj+y7GjUuFDb/R1NGe1OPzpA=="
)


class Signer:
    """The Signed Event Webhook's key pair, made for a test session."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())

    @property
    def public_key(self) -> str:
        """The verification key as SendGrid's console shows it: base64 of its DER."""
        der = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return base64.b64encode(der).decode()

    @property
    def public_pem(self) -> str:
        return (
            self.key.public_key()
            .public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            .decode()
        )

    def headers(self, body: bytes, timestamp: str | None = None) -> dict[str, str]:
        """The two headers SendGrid sends with ``body``."""
        stamp = timestamp or str(int(time.time()))
        signature = self.key.sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256()))
        return {SIGNATURE: base64.b64encode(signature).decode(), TIMESTAMP: stamp,
                "Content-Type": "application/json"}  # fmt: skip


def body(events: Sequence[dict[str, Any]]) -> bytes:
    """A post of ``events`` as SendGrid writes it: a JSON array, then CR LF."""
    return json.dumps(list(events)).encode() + b"\r\n"


def event(name: str, sent: Sent, email: str, **fields: Any) -> dict[str, Any]:
    """An event ``name`` (delivered, bounce, deferred, dropped, spamreport, processed, open...)
    of a mail the local SendGrid took, to ``email``: the fields every event has, our custom
    argument, and ``fields`` (``response``, ``reason``, ``status``, ``type``...)."""
    return {
        "email": email,
        "timestamp": int(time.time()),
        "smtp-id": f"<{sent.message_id}@ismtpd0001p1iad2.sendgrid.net>",
        "event": name,
        "category": [],
        "sg_event_id": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "sg_message_id": f"{sent.message_id}.filterdrecv-5bd8f5b5c6-ktwxv-1-6364F3A2-3.0",
        **sent.body.get("custom_args", {}),
        **fields,
    }


def delivered(sent: Sent, email: str) -> dict[str, Any]:
    return event("delivered", sent, email, ip="192.0.2.30", response="250 OK",
                 tls=1)  # fmt: skip


def bounced(sent: Sent, email: str, *, blocked: bool = False) -> dict[str, Any]:
    if blocked:
        return event(
            "bounce", sent, email, type="blocked", status="4.0.0",
            reason="421 4.7.0 Try again later, closing connection.",
            bounce_classification="Reputation",
        )  # fmt: skip
    return event(
        "bounce", sent, email, type="bounce", status="5.1.1",
        reason="550 5.1.1 The email account that you tried to reach does not exist.",
        bounce_classification="Invalid Address",
    )  # fmt: skip


def deferred(sent: Sent, email: str) -> dict[str, Any]:
    return event("deferred", sent, email, response="400 try again later", attempt="5")


def dropped(sent: Sent, email: str, reason: str = "Bounced Address") -> dict[str, Any]:
    return event("dropped", sent, email, reason=reason, status="5.0.0")


def spamreport(sent: Sent, email: str) -> dict[str, Any]:
    return event("spamreport", sent, email)

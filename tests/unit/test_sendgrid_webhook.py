"""notifier.sendgrid_webhook: the Signed Event Webhook's signature, checked against SendGrid's own
example and against the official ``sendgrid`` package's ``EventWebhook``."""

from __future__ import annotations

import base64

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from sendgrid import EventWebhook

from notifier.sendgrid_webhook import EventWebhookVerifier, SignatureRefused, load_public_key
from tests.support.peers.sendgrid_events import ANOTHER_KEY, DOCUMENTED, Signer, body


def verifier(key: str) -> EventWebhookVerifier:
    return EventWebhookVerifier(load_public_key(key))


def check(key: str, payload: bytes, signature: str, timestamp: str) -> None:
    verifier(key).verify(payload, signature=signature, timestamp=timestamp)


def test_sendgrids_documented_example_verifies() -> None:
    check(DOCUMENTED.public_key, DOCUMENTED.payload, DOCUMENTED.signature,
          DOCUMENTED.timestamp)  # fmt: skip


@pytest.mark.parametrize(
    ("key", "payload", "signature", "timestamp"),
    [
        # The other key of SendGrid's own tests.
        (ANOTHER_KEY, DOCUMENTED.payload, DOCUMENTED.signature, DOCUMENTED.timestamp),
        # Without the trailing CR LF SendGrid signs, or another body.
        (DOCUMENTED.public_key, DOCUMENTED.payload[:-2], DOCUMENTED.signature,
         DOCUMENTED.timestamp),
        (DOCUMENTED.public_key, b"payload", DOCUMENTED.signature, DOCUMENTED.timestamp),
        (DOCUMENTED.public_key, DOCUMENTED.payload.replace(b"dropped", b"dRopped"),
         DOCUMENTED.signature, DOCUMENTED.timestamp),
        # Another timestamp, or none; another signature, or none, or not base64.
        (DOCUMENTED.public_key, DOCUMENTED.payload, DOCUMENTED.signature, "1600112503"),
        (DOCUMENTED.public_key, DOCUMENTED.payload, DOCUMENTED.signature, ""),
        (DOCUMENTED.public_key, DOCUMENTED.payload,
         "MEUCIQCtIHJeH93Y+qpYeWrySphQgpNGNr/U+UyUlBkU6n7RAwIgJTz2C+8a8xonZGi6BpSzoQsbVRamr2nlxFDW"
         "YNH3j/0=", DOCUMENTED.timestamp),
        (DOCUMENTED.public_key, DOCUMENTED.payload, "", DOCUMENTED.timestamp),
        (DOCUMENTED.public_key, DOCUMENTED.payload, "not base64!", DOCUMENTED.timestamp),
    ],
)  # fmt: skip
def test_anything_else_is_refused(key: str, payload: bytes, signature: str, timestamp: str) -> None:
    with pytest.raises(SignatureRefused):
        check(key, payload, signature, timestamp)


def test_the_official_package_agrees_on_what_verifies() -> None:
    """Posts signed here verify for the official EventWebhook exactly when they do for ours."""
    signer = Signer()
    official = EventWebhook(signer.public_key)
    payload = body([{"email": "ada@example.com", "event": "delivered", "timestamp": 1700000000}])
    headers = signer.headers(payload)
    signature, timestamp = (
        headers["X-Twilio-Email-Event-Webhook-Signature"],
        headers["X-Twilio-Email-Event-Webhook-Timestamp"],
    )
    for case in (payload, payload[:-1], payload.replace(b"ada", b"eve")):
        ours = True
        try:
            check(signer.public_key, case, signature, timestamp)
        except SignatureRefused:
            ours = False
        assert ours == official.verify_signature(case.decode(), signature, timestamp)
        assert ours == (case == payload)


def test_the_key_is_read_as_the_console_shows_it_or_as_pem() -> None:
    signer = Signer()
    payload = body([])
    headers = signer.headers(payload, "1700000000")
    for key in (signer.public_key, signer.public_pem, f"  {signer.public_key}\n"):
        verifier(key).verify(
            payload, signature=headers["X-Twilio-Email-Event-Webhook-Signature"],
            timestamp="1700000000",
        )  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not a key",
        DOCUMENTED.public_key[:-8] + "AAAAAAA=",
        base64.b64encode(b"\x30\x03\x02\x01\x01").decode(),
    ],
)
def test_what_is_not_a_public_key_is_refused(text: str) -> None:
    with pytest.raises(ValueError, match="not a public key"):
        load_public_key(text)


def test_a_key_that_is_not_elliptic_curve_is_refused() -> None:
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048).public_key()
    der = rsa_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(ValueError, match="not an elliptic-curve"):
        load_public_key(base64.b64encode(der).decode())

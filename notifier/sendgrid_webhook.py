"""SendGrid's signed Event Webhook: each POST of events verified with the account's public key.

SendGrid signs what it posts with an ECDSA key pair of the account's (the "Signed Event
Webhook", its "Getting Started with the Event Webhook Security Features"): the header
``X-Twilio-Email-Event-Webhook-Signature`` is the base64 of the DER signature (ECDSA, P-256,
SHA-256) of the ``X-Twilio-Email-Event-Webhook-Timestamp`` header's value followed by the body,
byte for byte as posted (its trailing CR LF included). The public key is the one the console
shows: the base64 of its DER (SubjectPublicKeyInfo), which ``NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY``
takes as it is, or PEM. The official ``sendgrid`` package's ``EventWebhook`` does the same; the
tests hold this module to it and to SendGrid's own example (the SDKs' shared test vector).

::

    NotAllowed (403)            notifier.errors: the API layer answers it
    └── SignatureRefused        no signature, a bad one, or no key to check it with: nothing was
                                done; retrying cannot help
"""

from __future__ import annotations

import base64
import binascii

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key, load_pem_public_key

from notifier.errors import NotAllowed

SIGNATURE = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP = "X-Twilio-Email-Event-Webhook-Timestamp"


class SignatureRefused(NotAllowed):
    """The post is not shown to be SendGrid's: nothing was done; retrying cannot help."""


def load_public_key(text: str) -> ec.EllipticCurvePublicKey:
    """The key as SendGrid's console shows it (base64 of the DER public key) or in PEM;
    ValueError saying what is wrong with it."""
    text = text.strip()
    try:
        if text.startswith("-----BEGIN"):
            key = load_pem_public_key(text.encode())
        else:
            key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, binascii.Error, UnsupportedAlgorithm):
        raise ValueError(
            "not a public key: the base64 (or PEM) of the Signed Event Webhook's verification key"
        ) from None
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("not an elliptic-curve (ECDSA) key, as SendGrid's are")
    return key


class EventWebhookVerifier:
    """Checks the signature of an Event Webhook post with ``key``."""

    def __init__(self, key: ec.EllipticCurvePublicKey) -> None:
        self._key = key

    def verify(self, body: bytes, *, signature: str, timestamp: str) -> None:
        """Return if ``body`` is signed as the headers ``signature`` and ``timestamp`` say;
        SignatureRefused otherwise."""
        if not signature or not timestamp:
            raise SignatureRefused(f"the post lacks {SIGNATURE} or {TIMESTAMP}")
        try:
            decoded = base64.b64decode(signature, validate=True)
            self._key.verify(decoded, timestamp.encode("utf-8") + body, ec.ECDSA(hashes.SHA256()))
        except (binascii.Error, ValueError, InvalidSignature, UnicodeEncodeError):
            raise SignatureRefused(f"the {SIGNATURE} does not verify") from None

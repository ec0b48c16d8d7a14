"""Delivery as a test key sees it: simulated in the worker, from the recipient, sending nothing.

A client with ``"mode": "test"`` goes through everything a live one does (validation, limits,
idempotency, records, lanes, callbacks) except the provider: its notifications are handed to
this simulator instead, whatever providers are configured. The magic recipients (any domain
for mail) choose the outcome:

================================  ==================  ===========================================
mail (local part)                 phone               outcome
================================  ==================  ===========================================
anything else                     anything else       ``sent``, then ``delivered`` (a receipt)
``simulate-temporary-failure``    ``+8613800000001``  two transient failures (``retrying``), then
                                                      ``sent`` on the third attempt
``simulate-permanent-failure``    ``+8613800000002``  ``failed`` at once
``simulate-undelivered``          ``+8613800000003``  ``sent``, then ``undelivered`` (a receipt)
================================  ==================  ===========================================
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Literal

from notifier.errors import PermanentProviderError, TransientProviderError

NAME = "test"
Outcome = Literal["delivered", "temporary", "permanent", "undelivered"]
MAIL = {
    "simulate-temporary-failure": "temporary",
    "simulate-permanent-failure": "permanent",
    "simulate-undelivered": "undelivered",
}
PHONES = {
    "+8613800000001": "temporary",
    "+8613800000002": "permanent",
    "+8613800000003": "undelivered",
}
# The worst outcome among a mail's recipients decides it.
_ORDER: tuple[Outcome, ...] = ("permanent", "temporary", "undelivered", "delivered")
FAILED_ATTEMPTS = 2  # of a temporary failure, before it goes through


def mail_outcome(recipients: Iterable[str]) -> Outcome:
    """The outcome the recipients of a mail ask for."""
    found = {MAIL.get(address.rpartition("@")[0].lower(), "delivered") for address in recipients}
    return next(o for o in _ORDER if o in found)


def phone_outcome(phone: str) -> Outcome:
    """The outcome a phone number asks for."""
    found: Outcome = PHONES.get(phone, "delivered")  # type: ignore[assignment]
    return found


def simulate(
    outcome: Outcome, attempt: int
) -> tuple[str, Literal["delivered", "undelivered"] | None]:
    """One simulated send: the message id and the receipt to follow, or the provider error."""
    if outcome == "permanent":
        raise PermanentProviderError("simulated permanent failure (test key)", provider=NAME)
    if outcome == "temporary" and attempt <= FAILED_ATTEMPTS:
        raise TransientProviderError("simulated temporary failure (test key)", provider=NAME)
    receipt: Literal["delivered", "undelivered"] | None = (
        "undelivered"
        if outcome == "undelivered"
        else "delivered"
        if outcome == "delivered"
        else None
    )
    return f"test-{uuid.uuid4().hex}", receipt

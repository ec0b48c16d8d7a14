"""What a test key's sends come to, by recipient."""

from __future__ import annotations

import pytest

from notifier.errors import PermanentProviderError, TransientProviderError
from notifier.providers.simulated import mail_outcome, phone_outcome, simulate


@pytest.mark.parametrize(
    ("recipients", "outcome"),
    [
        (["ada@example.com"], "delivered"),
        (["Simulate-Undelivered@example.org"], "undelivered"),
        (["ada@example.com", "simulate-temporary-failure@example.com"], "temporary"),
        (["simulate-undelivered@x.example", "simulate-permanent-failure@x.example"], "permanent"),
    ],
)
def test_the_worst_recipient_decides_a_mail(recipients: list[str], outcome: str) -> None:
    assert mail_outcome(recipients) == outcome


def test_magic_numbers() -> None:
    assert [phone_outcome(f"+861380000000{i}") for i in range(4)] == [
        "delivered", "temporary", "permanent", "undelivered",
    ]  # fmt: skip


def test_a_temporary_failure_goes_through_on_the_third_attempt() -> None:
    for attempt in (1, 2):
        with pytest.raises(TransientProviderError):
            simulate("temporary", attempt)
    assert simulate("temporary", 3)[1] is None  # sent, no receipt to follow


def test_receipts_follow_delivered_and_undelivered_and_permanent_fails() -> None:
    assert simulate("delivered", 1)[1] == "delivered"
    assert simulate("undelivered", 1)[1] == "undelivered"
    with pytest.raises(PermanentProviderError):
        simulate("permanent", 1)

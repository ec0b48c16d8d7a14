"""backoff: exponential, full jitter, capped."""

from __future__ import annotations

import pytest

from notifier.tasks.retrying import backoff


@pytest.mark.parametrize(
    ("attempt", "ceiling"), [(1, 2.0), (2, 4.0), (3, 8.0), (9, 512.0), (10, 600.0)]
)
def test_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    assert backoff(attempt, base=2, cap=600, rng=lambda: 1.0) == ceiling


def test_full_jitter_spans_zero_to_the_ceiling() -> None:
    assert backoff(3, base=2, cap=600, rng=lambda: 0.0) == 0.0
    delays = {backoff(5, base=2, cap=600) for _ in range(200)}
    assert all(0 <= d <= 32 for d in delays)
    assert len(delays) > 150  # jittered, not a fixed step


def test_huge_attempt_numbers_do_not_overflow() -> None:
    assert backoff(10_000, base=2, cap=600, rng=lambda: 1.0) == 600

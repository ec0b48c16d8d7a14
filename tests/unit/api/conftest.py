"""Fixtures of the API tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask

from config import Settings
from notifier import create_app


@pytest.fixture
def guarded(make_settings: Callable[..., Settings]) -> Flask:
    """UK and Chinese numbers only, and never the UK's personal numbering range (+44 70)."""
    return create_app(
        make_settings(
            sms_allowed_countries=frozenset({"GB", "CN"}), sms_blocked_prefixes=("+4470",)
        )
    )

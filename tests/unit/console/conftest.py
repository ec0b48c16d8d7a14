"""Fixtures of the console's tests: an app with an operator, and a client logged in."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from tests.support.harness.console import console_users, log_in


@pytest.fixture
def app(make_settings: Callable[..., Settings]) -> Flask:
    """The app of the unit tests with one console operator (tests/support/harness/console.py)."""
    return create_app(make_settings(console_users=console_users()))


@pytest.fixture
def operator(app: Flask) -> FlaskClient:
    """A test client logged in to the console."""
    client = app.test_client()
    assert log_in(client).status_code == 303
    return client

"""Fixtures for the provider tests: the vendors' fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.peers.aliyun import FakeAliyun
from tests.support.peers.tencent import FakeTencent


@pytest.fixture
def fake_aliyun() -> Iterator[FakeAliyun]:
    """A fake Aliyun SMS for one test."""
    server = FakeAliyun().start()
    yield server
    server.stop()


@pytest.fixture
def fake_tencent() -> Iterator[FakeTencent]:
    """A fake Tencent Cloud SMS for one test."""
    server = FakeTencent().start()
    yield server
    server.stop()

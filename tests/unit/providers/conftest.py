"""Fixtures for the provider tests: the vendors' fakes."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.harness.dkim_keys import KeyPair, key_pair
from tests.support.peers.aliyun import FakeAliyun
from tests.support.peers.dns_server import DnsServer
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


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    """A DKIM key pair, its selector s1 for example.com."""
    return key_pair(tmp_path_factory.mktemp("dkim"))


@pytest.fixture(scope="module")
def dns_server(pair: KeyPair) -> Iterator[DnsServer]:
    """A DNS server that publishes ``pair``'s record at s1._domainkey.example.com."""
    server = DnsServer().start()
    server.records["s1._domainkey.example.com"] = pair.record
    yield server
    server.stop()

"""Fixtures of the unit tests that meet Amazon SNS: its PKI and its local HTTPS server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.peers.sns import Pki, SnsPeer, running, trust


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A CA, a TLS certificate for the SNS hosts and an SNS signing key, made once a module."""
    return Pki.make(tmp_path_factory.mktemp("sns-pki"))


@pytest.fixture
def peer(pki: Pki, monkeypatch: pytest.MonkeyPatch) -> Iterator[SnsPeer]:
    """The local SNS server, its CA trusted as the system's trust store."""
    trust(monkeypatch, pki.ca_file)
    with running(SnsPeer(pki)) as started:
        yield started

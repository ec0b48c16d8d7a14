"""A peer that runs a system package's program fails a test without that package's marker, so
``-m "not rabbitmq and not postfix and not browser and not prometheus"`` leaves out every test
that needs one (this test carries none of the four)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol

import pytest

from tests.support.peers import system
from tests.support.peers.chromium import chromium_binary
from tests.support.peers.postfix import PostfixServer
from tests.support.peers.prometheus import PrometheusServer, promtool
from tests.support.peers.rabbitmq import RabbitServer


class Server(Protocol):
    def start(self) -> object: ...
    def stop(self) -> None: ...


def started(make: Callable[[], Server]) -> Callable[[], None]:
    """Make a server and start it (and stop it again, whatever happens)."""

    def run() -> None:
        server = make()
        try:
            server.start()
        finally:
            server.stop()

    return run


@pytest.mark.parametrize(
    ("mark", "run"),
    [
        ("browser", chromium_binary),
        ("postfix", started(lambda: PostfixServer(relay_port=1))),
        ("rabbitmq", started(RabbitServer)),
        ("prometheus", lambda: promtool("--version")),
        ("prometheus", started(lambda: PrometheusServer(["127.0.0.1:1"]))),
    ],
)
def test_a_test_without_the_marker_cannot_run_the_package(
    mark: str, run: Callable[[], object]
) -> None:
    with pytest.raises(AssertionError, match=rf"mark it @pytest\.mark\.{mark} "):
        run()


def test_the_marker_lets_it_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(system, "marks", {"integration", "rabbitmq"})
    system.require("rabbitmq", "RabbitMQ")
    with pytest.raises(AssertionError, match='-m "not postfix" leaves it out'):
        system.require("postfix", "Postfix")

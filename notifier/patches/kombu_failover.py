"""kombu's connection, passing over a RabbitMQ node that recently failed to connect.

A ``;`` list of broker URLs is kombu's failover list: a connection starts on the first URL (a
copy of a connection, on the one its original is on) and moves to the next only once a connect
there has failed. A node that died outright refuses at once, so that costs nothing. A node that
went silent (a frozen VM, a host that lost its network) takes the TCP connection and never
answers the AMQP handshake: each new connection waits out ``broker_connection_timeout`` there
before it moves on, and a request that publishes gets no further than that wait. With a silent
first node the web answered 503 to every request for as long as the node was silent (seen in
``tests/integration/test_rabbitmq_cluster.py``).

So this process remembers which nodes failed (to connect, or under an operation), and for how
long to pass over them: a connection about to connect to such a node starts on the next one
instead. After ``AVOID`` seconds a node is tried again in its turn (a node back from the dead
takes connections again). And a connection leaves a failed node without the polite close that
a silent node would never answer.

And a connection an operation failed on for good (``Connection.ensure``'s retries spent) is let
go, not handed back to the pool as it is. With publisher confirms that is the difference between
a 202 and a lost message: py-amqp takes any ``basic.ack`` on the channel for the confirm it waits
for (``Channel.basic_publish_confirm``: no delivery tag is compared), and reads one waiting frame
before a publish (``Channel._basic_publish``). A publish whose confirm did not come in time (a
frozen node, a quorum queue without its majority) leaves that confirm to come later, on the
connection; one arriving while the next publish waits, or two waiting, and that publish is
"confirmed" by an earlier message's ack while the node never took it: the one way found by
which a publish to a SIGSTOPped node could be answered 202, as one CI run of
``tests/integration/test_rabbitmq.py::test_a_frozen_node_is_a_503_not_a_request_that_hangs``
saw (not reproduced since).

- Touches: ``kombu.Connection._connection_factory`` and ``Connection.maybe_switch_next``
  (overridden); ``Connection.Pool`` and ``kombu.connection.ConnectionPool.new`` (overridden, so a
  pooled connection is one of ours, a ``PooledConnection`` made from ``Connection._info``);
  relying on ``Connection._ensure_connection`` (it calls both on a failed connect),
  ``Connection.switch`` and ``Connection.collect`` as they are; and on Celery making every
  connection through ``app.amqp.Connection`` (``Celery._connection``), which
  ``notifier.celery_ext`` sets to ours. ``Connection.ensure`` (overridden: what it returns
  collects the connection when it raises), relying on ``kombu.Producer.publish`` retrying through
  it and on py-amqp's ``Channel.basic_publish_confirm``, ``Channel._basic_publish`` and
  ``AbstractChannel.wait`` as they are.
- Checked with: kombu 5.7.0, celery 5.7.0, amqp 5.4.2.
- Upstream: no issue found for passing over a node that just failed, nor for leaving a silent
  one without the close handshake: to be filed. Nearest: https://github.com/celery/kombu/issues/1594
  (connect timeout and failover together, closed). A confirm taken for another publish's: none
  found, to be filed (py-amqp would compare the delivery tag).
- Canary: ``tests/unit/test_patches.py``: the source of each symbol as checked; a refused
  connect goes through ``maybe_switch_next``, and Celery's connections and pool are ours;
  ``tests/integration/test_rabbitmq.py``: on kombu's connection a publish that timed out on its
  confirm still leaves the late confirm on the connection, and ours does not.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar, cast

from kombu import Connection
from kombu.connection import ConnectionPool, PooledConnection
from kombu.utils.url import parse_url

T = TypeVar("T")

# Seconds a node that failed (to connect, or under an operation) is passed over by this
# process's new connections.
AVOID = 30.0

_failed: dict[tuple[str, int], float] = {}  # (host, port) -> when it last failed (monotonic)
_lock = threading.Lock()


def _address(url: str) -> tuple[str, int]:
    parts = parse_url(url)
    return str(parts.get("hostname") or ""), int(parts.get("port") or 0)


def _failed_at(address: tuple[str, int]) -> float:
    with _lock:
        return _failed.get(address, float("-inf"))


class FailoverConnection(Connection):
    """A kombu connection that starts on a node of its failover list that has not just failed."""

    def _current(self) -> tuple[str, int]:
        return str(self.hostname or ""), int(self.port or 0)

    def _connection_factory(self) -> Any:
        if self.alt and time.monotonic() - _failed_at(self._current()) < AVOID:
            # The node that failed longest ago (or never): while the others wait out a silent
            # peer, each of them may fail for a while too, and the first to recover is taken.
            best = min(self.alt, key=lambda url: _failed_at(_address(url)))
            if _address(best) != self._current():
                self.switch(best)
        return super()._connection_factory()

    def maybe_switch_next(self) -> None:
        # kombu moves on when a connect to the current node failed, or an operation on it did:
        # remember that node. And let go of it without a word first: kombu's switch closes the
        # connection politely, waiting for a close-ok that a silent node never sends (a publish
        # that had timed out on its confirm then hung there for good).
        if self.alt:
            with _lock:
                _failed[self._current()] = time.monotonic()
            self.collect()
        super().maybe_switch_next()

    def ensure(
        self, obj: Any, fun: Callable[..., T], *args: Any, **policy: Any
    ) -> Callable[..., T]:
        """kombu's ``ensure``, and this connection let go (without a word, as kombu's retries
        do) when ``fun`` failed for good: what was sent on it may still be answered (a late
        confirm) and must not be read as the answer to whatever it carries next."""
        ensured = super().ensure(obj, fun, *args, **policy)

        # (Made for every publish, as kombu's own is: a plain closure, nothing copied onto it.)
        def ensured_or_let_go(*args: Any, **kwargs: Any) -> T:
            try:
                return ensured(*args, **kwargs)
            except BaseException:
                if cast(Any, self)._connection is not None:  # (kombu's retries may have let go)
                    self.collect()
                raise

        return ensured_or_let_go

    def Pool(self, limit: int | None = None, **kwargs: Any) -> ConnectionPool:
        """Celery's producer pool hands out connections of this kind too (kombu's pool makes
        plain ones)."""
        return _FailoverPool(self, limit=limit, **kwargs)


class _PooledFailoverConnection(PooledConnection, FailoverConnection):  # type: ignore[misc]
    """A pooled connection, passing over failed nodes."""


class _FailoverPool(ConnectionPool):
    def new(self) -> _PooledFailoverConnection:
        return _PooledFailoverConnection(self, **dict(self.connection._info(resolve=False)))

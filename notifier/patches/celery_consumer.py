"""Celery's worker consumer, set up through a cluster's list of nodes, reconnecting sooner, and
waiting out a broker's Redis that refuses writes.

Why: see the two classes below (a worker idle 17 s behind a dead node of a cluster; up to six
seconds without work after a Redis failover; restarts at CRITICAL every second while Redis was
full).

- Touches: ``celery.worker.consumer.delayed_delivery.DelayedDelivery._validate_broker_urls``
  (overridden: ``DelayedDelivery.start`` sets up each URL it returns, and gets the whole list
  as one); the step's name in ``Consumer.Blueprint.default_steps`` (replaced by ours);
  ``Consumer.ensure_connected`` (overridden: it calls kombu's
  ``Connection.ensure_connection``, which is given our pauses);
  ``Consumer.on_connection_error_before_connected`` and
  ``Consumer.on_connection_error_after_connected`` (overridden: ``Consumer.start`` calls one of
  them after each failed start of the consumer, before it restarts it, and takes more than five
  restarts in a second for a fault it logs at CRITICAL); ``Consumer.__init__`` (extended: the
  options it hands each step, ``without_mingle`` and ``without_gossip``, which
  ``Mingle.__init__`` and ``Gossip.__init__`` read, are set).
- Checked with: celery 5.7.0, kombu 5.7.0.
- Upstream: no issue found for any (the delay queues set up on each URL of a cluster's list
  in turn; the worker's reconnect pauses fixed at kombu's defaults; a broker that answers and
  refuses writes restarted at once, again and again): all to be filed.
- Canary: ``tests/unit/test_patches.py``: the source of each symbol as checked; Celery's
  blueprint still names ``DelayedDelivery`` once, its ``start`` sets up what
  ``_validate_broker_urls`` returns, ``ensure_connected`` leaves the pauses to us, and a refused
  start waits out ours without Celery's error line.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from celery.worker.consumer import Consumer as CeleryConsumer
from celery.worker.consumer.delayed_delivery import DelayedDelivery

from notifier.redisconn import refusal

# How a worker that lost its broker tries again: soon and often, not after kombu's 2, 4, 6… s.
RECONNECT = {"interval_start": 0.2, "interval_step": 0.3, "interval_max": 2.0}
# How long a worker whose broker's Redis refuses writes waits before it tries again, and how often
# it says so in the log.
REFUSED_WAIT = 1.0
REFUSED_SAY_EVERY = 60.0
log = logging.getLogger(__name__)


class ClusterDelayedDelivery(DelayedDelivery):
    """Celery's native delayed delivery, set up once through the whole list of RabbitMQ nodes.

    Celery takes each URL of a ``;`` list for a broker of its own and declares the delay queues
    on each in turn, every time the consumer (re)starts, and waits out a node that refuses
    (three more tries, 1, 3 and 5 s apart) before the consumer reads a message: with one node of
    a cluster dead, a worker that had failed over stood idle for 17 s (seen in
    tests/integration/test_rabbitmq_cluster.py; celery's delayed_delivery.py, as in 5.7.0). The
    nodes of one cluster share their exchanges, queues and bindings: declaring them once,
    through kombu's failover list, which passes over a dead node at once, is all it takes.
    """

    def _validate_broker_urls(self, broker_urls: str | list[str]) -> set[str]:
        super()._validate_broker_urls(broker_urls)  # type: ignore[misc]
        return {broker_urls if isinstance(broker_urls, str) else ";".join(broker_urls)}


class Consumer(CeleryConsumer):
    """Celery's consumer, reconnecting to the broker within a second of its coming back.

    Celery asks kombu for a connection with kombu's default pauses, 2 s after the first failure,
    4 s after the second: a failover's promotion (a second or two) costs a worker up to six
    seconds without work, while the web accepts again at once (seen in the Sentinel test).
    """

    class Blueprint(CeleryConsumer.Blueprint):  # type: ignore[valid-type,misc]
        default_steps = tuple(
            f"{__name__}:ClusterDelayedDelivery" if step.endswith(":DelayedDelivery") else step
            for step in CeleryConsumer.Blueprint.default_steps
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Mingle and Gossip off, as `celery worker --without-mingle --without-gossip` would turn
        # them off (the Procfile's line is the contract's, without them): Mingle asks the other
        # workers for the tasks they revoked and waits a second for their answers before the
        # worker takes anything, at every start (Notifier revokes no task: a cancel is the
        # record's); Gossip has every worker read every other's heartbeat, every two seconds,
        # for an election and clock sync nothing here uses. The heartbeats are still sent (for
        # Flower's list of workers), and remote control (`celery inspect`) still answers.
        super().__init__(*args, **{**kwargs, "without_mingle": True, "without_gossip": True})

    def ensure_connected(self, conn: Any) -> Any:
        ensure = conn.ensure_connection

        def sooner(*args: Any, **kwargs: Any) -> Any:
            return ensure(*args, **{**RECONNECT, **kwargs})

        conn.ensure_connection = sooner
        return super().ensure_connected(conn)

    # A broker's Redis that refuses writes (full, a replica, a disk it cannot save to) answers,
    # so the consumer connects, then fails where kombu writes (declaring the lanes, noting a
    # message it hands out): restarted at once, again and again, that was Celery's "frequent
    # restarts" at CRITICAL every second while Redis stayed full. The worker waits instead,
    # taking no message, and carries on when Redis takes writes again.
    _refusal_said = float("-inf")

    def on_connection_error_before_connected(self, exc: Exception) -> None:
        if not self._waited_out(exc):
            super().on_connection_error_before_connected(exc)

    def on_connection_error_after_connected(self, exc: Exception) -> None:
        super().on_connection_error_after_connected(exc)
        self._waited_out(exc)

    def _waited_out(self, exc: Exception) -> bool:
        refused = refusal(exc)
        if refused is None:
            return False
        if time.monotonic() - self._refusal_said > REFUSED_SAY_EVERY:
            self._refusal_said = time.monotonic()
            log.warning("the broker: %s; taking no message until it takes writes again", refused)
        time.sleep(REFUSED_WAIT)
        return True

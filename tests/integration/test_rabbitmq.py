"""RabbitMQ as the broker, Redis for state: how Notifier scales past one Redis.

Every test runs twice: with classic lanes, and with quorum lanes (``NOTIFIER_BROKER_QUEUE_TYPE``),
each in a virtual host of its own on one private node (a queue's type cannot change).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import pytest
from kombu import Connection, Producer, Queue
from kombu.exceptions import OperationalError

from config import Settings
from notifier.lanes import LANES
from notifier.patches.kombu_failover import FailoverConnection
from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.callbacks import HOOKED_KEY, HOOKED_SECRET
from tests.support.harness.clients import api_keys_with, callback_client
from tests.support.harness.processes import start_worker
from tests.support.harness.stack import (
    Caller,
    Stack,
    address,
    send,
    stack_settings,
    start_stack,
)
from tests.support.harness.wait import wait_for
from tests.support.peers.rabbitmq import RabbitServer
from tests.support.peers.receiver import CallbackReceiver
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


@dataclass
class Amqp:
    """A stack on RabbitMQ: the node, the virtual host and the lanes' queue type; the client
    ``hooked``'s status callbacks go to ``receiver``."""

    stack: Stack
    rabbit: RabbitServer
    vhost: str
    queue_type: str
    receiver: CallbackReceiver

    @property
    def quorum(self) -> bool:
        return self.queue_type == "quorum"


@pytest.fixture(scope="module")
def rabbit() -> Iterator[RabbitServer]:
    """A private RabbitMQ node for this module."""
    node = RabbitServer()
    node.start()
    yield node
    node.stop()


@pytest.fixture(scope="module", params=["classic", "quorum"])
def amqp(
    request: pytest.FixtureRequest,
    rabbit: RabbitServer,
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Amqp]:
    """Web, worker and beat on the node with lanes of one type, with state in the session's Redis."""
    queue_type: str = request.param
    state = Path(tmp_path_factory.mktemp(f"amqp-{queue_type}"))
    receiver = CallbackReceiver()
    settings = stack_settings(redis_server, smtp, twilio, state, db=3)
    settings.update(
        broker_url=rabbit.add_vhost(queue_type),
        broker_queue_type=queue_type,
        # A killed worker's claims last the task time limit (half of this): 15 s, not minutes.
        broker_visibility_timeout=30,
        api_keys=api_keys_with(callback_client("hooked", HOOKED_KEY, receiver.url, HOOKED_SECRET)),
    )
    stack = start_stack(settings, smtp, twilio)
    yield Amqp(stack, rabbit, vhost=queue_type, queue_type=queue_type, receiver=receiver)
    stack.stop()
    receiver.stop()


def test_mail_and_captcha_go_through_rabbitmq(amqp: Amqp) -> None:
    stack, rabbit = amqp.stack, amqp.rabbit
    transport = f"transport:   amqp://guest:**@127.0.0.1:{rabbit.port}/{amqp.vhost}"
    assert transport in stack.worker.output()
    to = address("amqp")
    response = stack.post("/v1/mail", {"to": [to], "subject": "Via RabbitMQ", "text": "Hello"})
    assert response.status_code == 202
    notification_id = response.json()["id"]
    assert stack.wait_status(notification_id, "sent")["attempts"] == 1
    assert len(stack.smtp.received(notification_id)) == 1
    phone = "+8613900139000"
    captcha = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": f"amqp-{amqp.vhost}"})
    assert captcha.status_code == 202
    assert stack.wait_status(captcha.json()["id"], "sent")["provider"] == "twilio"
    assert stack.get("/readyz").status_code == 200
    metrics = stack.get("/metrics").text
    for lane in ("captcha", "mail", "scheduled"):
        assert f'notifier_queue_depth{{queue="{lane}"}} ' in metrics


def test_the_sweep_reads_each_lanes_length_from_rabbitmq(amqp: Amqp) -> None:
    # The sweep of lost messages asks RabbitMQ how long each lane is: a lane no worker
    # declared is NOT_FOUND (the channel closed), read as empty, the others still read.
    from celery import Celery

    from notifier.metrics import broker_depths

    probe = Celery("probe", broker=amqp.stack.env["NOTIFIER_BROKER_URL"])
    try:
        depths = broker_depths(probe, ["no-such-lane", *LANES])
    finally:
        probe.close()
    assert depths["no-such-lane"] == 0
    assert set(LANES) <= set(depths) and all(n >= 0 for n in depths.values())


def test_the_lanes_are_queues_of_the_type_asked_for(amqp: Amqp) -> None:
    rabbit, vhost = amqp.rabbit, amqp.vhost
    types = rabbit.queue_types(vhost)
    assert {lane: types.get(lane) for lane in LANES} == dict.fromkeys(LANES, amqp.queue_type)
    # Celery's native delayed delivery, which quorum lanes turn on: 28 levels of delay queues,
    # which hand a message back through the lanes' exchange: a topic exchange for quorum lanes.
    delayed = {name: kind for name, kind in types.items() if name.startswith("celery_delayed_")}
    exchanges = dict(rabbit.table("list_exchanges", vhost, "name", "type"))
    # What a worker may hold: one prefetch for the channel (global QoS) with classic lanes;
    # with quorum lanes, which have no global QoS, as much for each lane it serves.
    prefetch = {
        queue: int(count)
        for queue, count in rabbit.table("list_consumers", vhost, "queue_name", "prefetch_count")
        if queue in LANES
    }
    if amqp.quorum:
        assert delayed == {f"celery_delayed_{n}": "quorum" for n in range(28)}
        assert exchanges["mail"] == "topic"
        # One a thread of the worker (prefetch multiplier 1), the threads its default gives it.
        threads = Settings.model_fields["worker_concurrency"].default
        assert prefetch == dict.fromkeys(LANES, threads)
    else:
        assert delayed == {}
        assert exchanges["mail"] == "direct"
        assert prefetch == dict.fromkeys(LANES, 0)


def test_a_batch_fans_out_and_drains_through_rabbitmq(amqp: Amqp) -> None:
    stack = amqp.stack
    recipients = rows(1200, f"amqpb-{amqp.vhost}")  # three chunks: the fan-out publishes after each
    accepted = post_batch(stack.base, recipients)
    done = wait_batch(stack.base, accepted["id"], "done")
    assert done["counts"] == {"sent": 1200}
    by_rcpt = stack.smtp.by_recipient()
    assert [len(by_rcpt.get(r["to"], [])) for r in recipients] == [1] * 1200


def test_a_send_that_fails_for_now_is_retried_until_sent(amqp: Amqp) -> None:
    stack = amqp.stack
    to = address("amqp-retry")
    stack.smtp.plan(to, "451 4.3.0 Mailbox busy", "451 4.3.0 Mailbox busy")
    notification_id = send(stack, to=[to])
    if amqp.quorum:
        # The retry waits out its countdown in RabbitMQ (a second in the first delay queue),
        # not reserved by a worker that could not take more messages meanwhile.
        wait_for(
            lambda: amqp.rabbit.ready("celery_delayed_0", amqp.vhost) > 0,
            what="the retry to wait in RabbitMQ's delay queue",
        )
    assert stack.wait_status(notification_id, "sent")["attempts"] == 3
    assert len(stack.smtp.received(notification_id)) == 1


@pytest.mark.soak
def test_a_worker_killed_mid_drain_loses_nothing_and_sends_nothing_twice(amqp: Amqp) -> None:
    stack, handler = amqp.stack, amqp.stack.smtp.handler

    def count(ids: list[str]) -> int:
        return sum(i in handler.arrivals for i in ids)

    stack.worker.stop()  # the backlog is queued while no worker runs
    ids = [send(stack, to=[address(f"amqp-kill{i}")]) for i in range(300)]
    handler.rcpt_delay = 0.2  # a relay far away: the worker has all its threads in flight
    try:
        stack.worker = start_worker(stack.env)
        wait_for(lambda: count(ids) >= 60, what="the first mails")
        # Hold every new mail at RCPT (for less than the mail timeout, so none is given up), and
        # kill the worker once no mail is past RCPT and each one that arrived is recorded as
        # sent: the one moment SMTP cannot tell apart (taken, not yet recorded) is then not in
        # play, so a second copy would be Notifier's fault.
        handler.rcpt_delay = 3.0

        def held_and_recorded() -> list[str] | None:
            if handler.awaiting_data():
                return None
            arrived = [i for i in ids if i in handler.arrivals]
            recorded = all(stack.status(i)["status"] == "sent" for i in arrived)
            # And nothing got past RCPT while the records were read.
            held = not handler.awaiting_data() and len(arrived) == count(ids)
            return arrived if recorded and held else None

        arrived = wait_for(held_and_recorded, what="the mails in flight to be held at RCPT")
        stack.worker.stop(signal.SIGKILL)
        assert len(arrived) < 300, "the drain finished before the kill: the test proves nothing"
        handler.rcpt_delay = 0.0
        stack.worker = start_worker(stack.env)
        # What the dead worker held comes back at once; those it was sending wait out their
        # claims (15 s) and are retried through the delay queues.
        wait_for(
            lambda: all(stack.status(i)["status"] == "sent" for i in ids),
            timeout=120,
            what="all 300 mails to be sent",
        )
    finally:
        handler.rcpt_delay = 0.0
    assert [len(stack.smtp.received(i)) for i in ids] == [1] * 300


def test_a_mail_the_broker_refuses_is_a_503_and_every_202_is_sent(amqp: Amqp) -> None:
    stack, rabbit = amqp.stack, amqp.rabbit
    stack.worker.stop()  # nothing takes mail off the lane while it fills up
    full = '{"max-length": 2, "overflow": "reject-publish"}'  # RabbitMQ refuses what is over
    rabbit.ctl("set_policy", "-p", amqp.vhost, "--apply-to", "queues", "full", "^mail$", full)
    accepted: list[str] = []

    def refused() -> bool:
        answer = stack.post("/v1/mail", {"to": [address("amqp-full")], "subject": "S", "text": "T"})
        if answer.status_code == 202:
            accepted.append(answer.json()["id"])
        return answer.status_code == 503

    try:
        # Without publisher confirms every answer would be 202, and what RabbitMQ dropped lost.
        wait_for(refused, what="RabbitMQ to refuse a mail")
    finally:
        rabbit.ctl("clear_policy", "-p", amqp.vhost, "full")
        stack.worker = start_worker(stack.env)
    assert accepted, "the lane was full before any mail went in"
    for notification_id in accepted:
        assert stack.wait_status(notification_id, "sent")["attempts"] == 1


# Classic lanes only: a quorum queue (RabbitMQ 3.10) does not enforce max-length 0 (a probe is
# never refused), and what is tested is Notifier's, whatever the lane's type.
@pytest.mark.parametrize("amqp", ["classic"], indirect=True)
def test_a_callback_the_broker_refuses_is_published_once_it_takes_it_again(amqp: Amqp) -> None:
    stack, rabbit = amqp.stack, amqp.rabbit
    hooked = Caller(stack, HOOKED_KEY)
    # The callbacks lane refuses every message: the send is recorded, its callback is not
    # published (with Redis as the broker the two go in one step; here one after the other).
    refuse = '{"max-length": 0, "overflow": "reject-publish"}'
    rabbit.ctl(
        "set_policy", "-p", amqp.vhost, "--apply-to", "queues", "refuse", "^callbacks$", refuse
    )
    try:
        # In force once the node refuses a message of its own there (a quorum queue takes up a
        # policy a moment after it is listed).
        wait_for(lambda: _refused_on(rabbit, amqp.vhost, "callbacks"), what="the policy in force")
        to = address("amqp-callback")
        notification_id = hooked.post("/v1/mail", {"to": [to], "subject": "S", "text": "T"})
        record = hooked.wait_status(notification_id, "sent")
        assert record["attempts"] == 1  # recorded once: the refusal failed no attempt
        assert not amqp.receiver.for_notification(notification_id)
    finally:
        rabbit.ctl("clear_policy", "-p", amqp.vhost, "refuse")
    # Owed, and published by beat's sweep once the broker takes it.
    (callback,) = wait_for(
        lambda: amqp.receiver.for_notification(notification_id), what="the owed callback"
    )
    assert b'"sent"' in callback.body


def _refused_on(rabbit: RabbitServer, vhost: str, queue: str) -> bool:
    """Whether the node refuses a message to ``queue`` now: a probe published with confirms is
    nacked (one it takes is a message no task reads, which a worker drops)."""
    options = {"confirm_publish": True}
    with Connection(rabbit.vhost_url(vhost), transport_options=options, connect_timeout=2) as c:
        try:
            Producer(c).publish({"probe": 1}, routing_key=queue, confirm_timeout=5)
        except Exception:  # py-amqp's MessageNacked
            return True
    return False


def test_a_frozen_node_is_a_503_not_a_request_that_hangs(amqp: Amqp) -> None:
    stack = amqp.stack
    body = {"to": [address("amqp-frozen")], "subject": "S", "text": "T"}
    # Each web process publishes over connections it keeps (a new one would fail to open in 2 s).
    for _ in range(10):
        assert stack.post("/v1/mail", body).status_code == 202
    with amqp.rabbit.frozen():
        # The confirm never comes: the publish gives up after a second, tries a new connection
        # (which cannot open either), and the request is answered.
        started = time.monotonic()
        refused = stack.post("/v1/mail", body)  # (a request that hangs fails after 10 s)
        took = time.monotonic() - started
    assert refused.status_code == 503, f"{refused.status_code} after {took:.2f} s: {refused.text}"
    assert took < 10, f"503 took {took:.1f} s"
    accepted = wait_for(
        lambda: (r := stack.post("/v1/mail", body)).status_code == 202 and r,
        what="the web to accept again",
    )
    stack.wait_status(accepted.json()["id"], "sent", timeout=60)


@pytest.mark.parametrize("ours", [False, True], ids=["kombu", "ours"])
def test_a_publish_whose_confirm_timed_out_leaves_no_late_confirm_for_the_next(
    rabbit: RabbitServer, ours: bool
) -> None:
    """py-amqp takes any ack on the channel for the confirm a publish waits for, and reads one
    waiting frame before a publish: a late confirm left on a connection can pass for the next
    publish's, a 202 for a message the node never took. On kombu's own connection (the canary:
    notifier/patches/kombu_failover.py) a publish that gave up on its confirm leaves it to come
    on the connection it goes on using; ours lets that connection go, and the next publish is
    confirmed by its own."""
    kind = FailoverConnection if ours else Connection
    queue = Queue(f"late-confirm-{'ours' if ours else 'kombu'}", routing_key="late")
    options = {"confirm_publish": True}
    with kind(rabbit.url, transport_options=options, connect_timeout=2) as connection:
        producer = Producer(connection)
        producer.publish({"n": 1}, routing_key=queue.name, declare=[queue], confirm_timeout=10)
        with rabbit.frozen(), pytest.raises(OperationalError):
            # One try, as the web's last: the confirm does not come within its half second.
            producer.publish({"n": 2}, routing_key=queue.name, confirm_timeout=0.5,
                             retry=True, retry_policy={"max_retries": 0})  # fmt: skip
        if not ours:
            late: list[int] = []
            channel: Any = producer.channel  # py-amqp's (kombu types it vaguely)
            channel.events["basic_ack"].add(lambda tag, multiple: late.append(tag))
            connection.drain_events(timeout=10)  # the node is back: message 2's confirm comes
            assert late == [2], _re_check_amqp()
            return
        assert not connection.connected, "a connection with a confirm still to come was kept"
        producer.revive(cast(Any, connection))  # as the producer pool does for the next request
        producer.publish({"n": 3}, routing_key=queue.name, confirm_timeout=10)
        assert connection.connected


def _re_check_amqp() -> str:
    return (
        "kombu's connection no longer holds a late confirm after a publish gave up on it: "
        "re-check notifier/patches/kombu_failover.py's Connection.ensure against py-amqp"
    )

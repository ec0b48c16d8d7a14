"""notifier_client against the real service: the session's stack, and a web of its own (an
"edge") that needs a Redis replica to confirm every write, so that pausing the replica gives a
real 503 after a write, and a request that is killed with the web while it waits."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import re
import signal
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import httpx
import notifier_client as nc
import pytest
import redis

from tests.support.harness.batches import rows as batch_rows
from tests.support.harness.clients import KEYS, api_keys_with
from tests.support.harness.processes import Process, start_web
from tests.support.harness.stack import Stack, address, code_sent_to, new_phone
from tests.support.harness.wait import wait_for
from tests.support.peers.redis_server import RedisServer

pytestmark = pytest.mark.integration
PACED = "ntf_test-key-one-a-second"
QUICK: nc.Settings = {"backoff_base": 0.2, "backoff_cap": 1.0}


@dataclass
class Edge:
    """A web of its own on the stack's Redis, whose writes a replica must confirm."""

    env: dict[str, str]
    web: Process
    base: str
    primary: redis.Redis
    replica: RedisServer

    def pause_replica(self) -> None:
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGSTOP)

    def resume_replica(self) -> None:
        assert self.replica.process is not None
        os.kill(self.replica.process.pid, signal.SIGCONT)


@pytest.fixture(scope="module")
def edge(stack: Stack, redis_server: RedisServer) -> Iterator[Edge]:
    """The edge web and the replica of the session's Redis it waits for."""
    replica = RedisServer(args=("--replicaof", "127.0.0.1", str(redis_server.port)))
    replica.start()
    follower = redis.Redis(port=replica.port)
    wait_for(
        lambda: follower.info("replication")["master_link_status"] == "up",
        what="the replica to follow the primary",
    )
    paced = {
        "client": "paced",
        "key_sha256": hashlib.sha256(PACED.encode()).hexdigest(),
        "scopes": ["mail"],
        "rate": "1/s",
    }
    env = {
        **stack.env,
        "NOTIFIER_REDIS_MIN_REPLICAS": "1",
        "NOTIFIER_REDIS_REPLICA_TIMEOUT_MS": "1500",
        "NOTIFIER_API_KEYS": api_keys_with(paced),
    }
    web, base = start_web(env)
    found = Edge(env, web, base, redis.Redis.from_url(redis_server.url()), replica)
    yield found
    found.resume_replica()
    found.web.stop()
    replica.stop()


class Watched(httpx.HTTPTransport):
    """httpx's own transport, noting each answer's status and calling ``then`` after each."""

    def __init__(self, then: Callable[[httpx.Response], None] = lambda r: None) -> None:
        super().__init__()
        self.statuses: list[int] = []
        self.then = then

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = super().handle_request(request)
        self.statuses.append(response.status_code)
        self.then(response)
        return response


def rows(n: int, tag: str) -> list[nc.Recipient]:
    """``n`` recipients of the welcome template, as the client takes them."""
    return [
        nc.Recipient(to=r["to"], data=r["data"], reference=r["reference"])
        for r in batch_rows(n, tag)
    ]


def arrivals(stack: Stack, to: str) -> int:
    return len(stack.smtp.by_recipient().get(to, []))


def waiting(primary: redis.Redis) -> bool:
    """Whether a connection is blocked in WAIT now (``cmd`` alone is its last command)."""
    return any(c["cmd"] == "wait" and "b" in c["flags"] for c in primary.client_list())


def mailed_code(stack: Stack, notification_id: str) -> str:
    (_, message), *_ = wait_for(
        lambda: stack.smtp.received(notification_id), what="the code's mail"
    )
    text = message.get_body(("plain",))
    assert text is not None
    found = re.search(r"\b(\d{6})\b", text.get_content())
    assert found, text.get_content()
    return found[1]


def test_the_sync_client_sends_verifies_and_mints_through_the_stack(stack: Stack) -> None:
    with nc.Client(stack.base, KEYS["tester"]) as api:
        to = address("client-sync")
        mail = api.send_mail(to=[to], subject="Hello", text="From the client", reference="c-1")
        sent = wait_for(
            lambda: (n := api.get_notification(mail.id)).status == "sent" and n, what="sent"
        )
        assert (sent.kind, sent.reference, arrivals(stack, to)) == ("mail", "c-1", 1)

        phone = new_phone()
        api.send_sms_captcha(phone, "login", locale="en")
        assert api.verify_sms_captcha(phone, "login", code_sent_to(stack.twilio, phone)).valid

        inbox = address("client-code")
        ask = api.send_mail_captcha(inbox, "login", locale="en")
        code = mailed_code(stack, ask.id)
        assert api.verify_mail_captcha(inbox, "login", code) == nc.Verdict(True)
        assert api.verify_mail_captcha(inbox, "login", code).reason == "expired"

        assert api.qiniu_token("avatars", key="u/1.png").token.count(":") == 2
        assert urlsplit(api.s3_form("avatars", key="u/1.png").url).scheme == "http"


def test_a_batch_is_paged_to_its_end_and_a_sent_one_reads_done(stack: Stack) -> None:
    with nc.Client(stack.base, KEYS["tester"]) as api:
        later = datetime.now(UTC) + timedelta(days=1)
        many = api.send_batch(rows(250, "client-paged"), template="welcome", send_at=later)
        paged = list(api.batch_rows(many.id))  # 100 a page: three pages
        assert [r.reference for r in paged] == [f"row-{i}" for i in range(250)]
        assert {r.status for r in paged} == {"scheduled"}
        assert api.cancel_batch(many.id).status == "cancelled"
        assert {r.status for r in api.batch_rows(many.id)} == {"cancelled"}

        few = api.send_batch(rows(3, "client-sent"), template="welcome")
        done = wait_for(
            lambda: (b := api.get_batch(few.id)).status == "done" and b, what="the batch done"
        )
        assert done.counts == {"sent": 3}
        assert [r.status for r in api.batch_rows(few.id, status="sent")] == ["sent"] * 3


def test_the_async_client_does_the_same_awaited(stack: Stack) -> None:
    to = address("client-async")

    async def run() -> tuple[nc.Accepted, list[nc.BatchRow], nc.ValidationFailed]:
        async with nc.AsyncClient(stack.base, KEYS["tester"]) as api:
            mail = await api.send_mail(to=[to], subject="Hello", text="Awaited")
            batch = await api.send_batch(
                rows(120, "client-async"), template="welcome",
                send_at=datetime.now(UTC) + timedelta(days=1),
            )  # fmt: skip
            paged = [row async for row in api.batch_rows(batch.id)]
            await api.cancel_batch(batch.id)
            try:
                await api.send_mail(to=["nobody"], subject="Hello", text="x")
            except nc.ValidationFailed as e:
                return mail, paged, e
            raise AssertionError("an invalid address was accepted")

    mail, paged, invalid = asyncio.run(run())
    assert len(paged) == 120 and paged[-1].reference == "row-119"
    assert [e.loc for e in invalid.errors] == [("body", "to", 0)]
    assert stack.wait_status(mail.id, "sent")["id"] == mail.id
    assert arrivals(stack, to) == 1


def test_a_429_is_waited_out_as_retry_after_says(stack: Stack, edge: Edge) -> None:
    watched = Watched()
    with nc.Client(edge.base, PACED, transport=watched, **QUICK) as api:
        first = api.send_mail(to=[address("paced")], subject="One", text="x")
        second = api.send_mail(to=[address("paced")], subject="Two", text="x")
    assert watched.statuses == [202, 429, 202]
    assert first.id != second.id and not second.replayed


def test_a_503_after_the_write_is_retried_with_its_key_and_sends_once(
    stack: Stack, edge: Edge
) -> None:
    def resume_after_503(response: httpx.Response) -> None:
        if response.status_code == 503:
            edge.resume_replica()

    watched = Watched(then=resume_after_503)
    to = address("client-503")
    edge.pause_replica()
    try:
        with nc.Client(edge.base, KEYS["tester"], transport=watched, **QUICK) as api:
            accepted = api.send_mail(to=[to], subject="Once", text="x")
    finally:
        edge.resume_replica()
    assert watched.statuses == [503, 202]
    assert accepted.replayed  # the first attempt's write stood: its answer, nothing sent again
    stack.wait_status(accepted.id, "sent")
    assert arrivals(stack, to) == 1


@pytest.mark.soak
def test_a_send_whose_web_is_killed_mid_request_is_sent_exactly_once(
    stack: Stack, edge: Edge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="notifier_client")
    to = address("client-killed")
    outcome: list[nc.Accepted | BaseException] = []
    patient: nc.Settings = {**QUICK, "max_retries": 40}  # past the web's restart
    api = nc.Client(edge.base, KEYS["tester"], **patient)

    def send() -> None:
        try:
            outcome.append(api.send_mail(to=[to], subject="Once", text="x"))
        except BaseException as e:
            outcome.append(e)

    edge.pause_replica()
    sender = threading.Thread(target=send)
    try:
        sender.start()
        # The mail is stored and queued and its answer kept: the web now waits for the replica.
        wait_for(lambda: waiting(edge.primary), what="the web to wait for the replica")
        edge.web.stop(signal.SIGKILL)
        edge.resume_replica()
        edge.web, _ = start_web(edge.env, port=urlsplit(edge.base).port)
        sender.join(timeout=60)
    finally:
        edge.resume_replica()
        api.close()
    (accepted,) = outcome
    assert isinstance(accepted, nc.Accepted), accepted
    assert accepted.replayed
    retried = [r.getMessage() for r in caplog.records if r.name == "notifier_client"]
    # The answer never came: the connection was cut (how the cut shows depends on the moment).
    assert re.search(r"attempt 1 failed: (RemoteProtocolError|ReadError)", retried[0]), retried
    stack.wait_status(accepted.id, "sent")
    assert arrivals(stack, to) == 1

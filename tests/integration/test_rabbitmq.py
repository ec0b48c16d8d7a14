"""RabbitMQ as the broker, Redis for state: how Notifier scales past one Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.batches import post_batch, rows, wait_batch
from tests.support.rabbitmq import RabbitServer
from tests.support.redis_server import RedisServer
from tests.support.smtp import SmtpSink
from tests.support.stack import Stack, stack_settings, start_stack
from tests.support.twilio import FakeTwilio

pytestmark = [pytest.mark.integration, pytest.mark.rabbitmq]


@pytest.fixture(scope="module")
def rabbit_stack(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Stack, RabbitServer]]:
    """Web, worker and beat on a private RabbitMQ node, with state in the session's Redis."""
    rabbit = RabbitServer()
    rabbit.start()
    settings = stack_settings(
        redis_server, smtp, twilio, Path(tmp_path_factory.mktemp("amqp")), db=3
    )
    settings["broker_url"] = rabbit.url
    stack = start_stack(settings, smtp, twilio)
    yield stack, rabbit
    stack.stop()
    rabbit.stop()


def test_mail_and_captcha_go_through_rabbitmq(rabbit_stack: tuple[Stack, RabbitServer]) -> None:
    stack, rabbit = rabbit_stack
    assert f"transport:   amqp://guest:**@127.0.0.1:{rabbit.port}//" in stack.worker.output()
    to = f"amqp-{uuid.uuid4().hex[:8]}@example.com"
    response = stack.post("/v1/mail", {"to": [to], "subject": "Via RabbitMQ", "text": "Hello"})
    assert response.status_code == 202
    notification_id = response.json()["id"]
    assert stack.wait_status(notification_id, "sent")["attempts"] == 1
    assert len(stack.smtp.received(notification_id)) == 1
    phone = "+8613900139000"
    captcha = stack.post("/v1/sms/captcha", {"phone": phone, "purpose": "amqp"})
    assert captcha.status_code == 202
    assert stack.wait_status(captcha.json()["id"], "sent")["provider"] == "twilio"
    assert stack.get("/readyz").status_code == 200
    metrics = stack.get("/metrics").text
    for lane in ("captcha", "mail", "scheduled"):
        assert f'notifier_queue_depth{{queue="{lane}"}} ' in metrics


def test_a_batch_fans_out_and_drains_through_rabbitmq(
    rabbit_stack: tuple[Stack, RabbitServer],
) -> None:
    stack, _ = rabbit_stack
    recipients = rows(1200, "amqpb")  # three chunks: the fan-out publishes after each
    accepted = post_batch(stack.base, recipients)
    done = wait_batch(stack.base, accepted["id"], "done")
    assert done["counts"] == {"sent": 1200}
    by_rcpt = stack.smtp.by_recipient()
    assert [len(by_rcpt.get(r["to"], [])) for r in recipients] == [1] * 1200

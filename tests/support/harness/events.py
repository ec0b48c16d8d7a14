"""A stack whose mail goes through the local SES, then SendGrid, then SMTP, with both providers'
events coming back signed: SES's through the local SNS (the SNS hosts resolve to it in the
stack's processes, its CA their trust store), SendGrid's signed with a key of the test's."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from tests.support.harness.stack import Stack, address, stack_settings, start_stack
from tests.support.harness.wait import wait_for
from tests.support.peers import sendgrid, sendgrid_events, ses, ses_events, sns
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.sendgrid import FakeSendGrid
from tests.support.peers.sendgrid import Sent as SendGridSent
from tests.support.peers.ses import FakeSes
from tests.support.peers.ses import Sent as SesSent
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.sns import Pki, SnsPeer
from tests.support.peers.twilio import FakeTwilio


@dataclass
class Events:
    """The stack, the two API stand-ins, the SNS server and the keys events are signed with."""

    stack: Stack
    ses: FakeSes
    sendgrid: FakeSendGrid
    sns: SnsPeer
    pki: Pki
    signer: sendgrid_events.Signer

    def sent_by_ses(self, to: list[str], who: str = "tester", **body: Any) -> tuple[str, SesSent]:
        """POST a mail as ``who``; once SES took it, its id and what SES has of it."""
        notification_id = self.post_mail(to, who, **body)
        (sent,) = wait_for(lambda: self.ses.to(to[0]), what=f"SES to take {notification_id}")
        self.wait_sent(notification_id, who)
        return notification_id, sent

    def sent_by_sendgrid(self, to: list[str], who: str = "tester") -> tuple[str, SendGridSent]:
        """A mail SES throttles, so SendGrid takes it: its id and what SendGrid has of it."""
        self.ses.plan(to[0], ses.THROTTLED)
        notification_id = self.post_mail(to, who)
        (sent,) = wait_for(lambda: self.sendgrid.to(to[0]), what=f"SendGrid to take {to[0]}")
        self.wait_sent(notification_id, who)
        return notification_id, sent

    def wait_sent(self, notification_id: str, who: str) -> None:
        """Wait until the send of ``notification_id`` is recorded."""
        wait_for(
            lambda: record(self, notification_id, who)["status"] == "sent",
            what=f"{notification_id} to be sent",
        )

    def post_mail(self, to: list[str], who: str = "tester", **body: Any) -> str:
        answer = self.stack.post("/v1/mail", {"to": to, "subject": "Hello", "text": "Plain",
                                              **body}, who=who)  # fmt: skip
        assert answer.status_code == 202, answer.text
        found: str = answer.json()["id"]
        return found

    def post_ses(self, message: dict[str, Any], **signed: Any) -> requests.Response:
        """POST an SES event to the stack as SNS does, signed with the SNS key."""
        body = ses_events.signed(message, self.pki.signing_key, **signed)
        return self.post_sns(body)

    def post_sns(self, body: bytes) -> requests.Response:
        return requests.post(
            f"{self.stack.base}/v1/receipts/ses", data=body, timeout=10,
            headers={"Content-Type": "text/plain; charset=UTF-8",
                     "x-amz-sns-message-type": "Notification"},
        )  # fmt: skip

    def post_sendgrid(
        self, events: list[dict[str, Any]], signer: sendgrid_events.Signer | None = None
    ) -> requests.Response:
        """POST events to the stack as SendGrid's Event Webhook does, signed (with our key)."""
        body = sendgrid_events.body(events)
        headers = (signer or self.signer).headers(body)
        return requests.post(
            f"{self.stack.base}/v1/receipts/sendgrid", data=body, headers=headers, timeout=10
        )

    def suppression(self, to: str, who: str = "tester") -> str | None:
        """The reason ``to`` is on ``who``'s suppression list, or None."""
        answer = self.stack.get_as(f"/v1/suppressions/{to}", who)
        if answer.status_code == 404:
            return None
        assert answer.status_code == 200, answer.text
        found: str = answer.json()["reason"]
        return found


@contextlib.contextmanager
def events_stack(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    folder: Path,
    db: int,
    **settings: Any,
) -> Iterator[Events]:
    """The stack (its Redis database ``db``, ``settings`` on top) and its peers, started."""
    pki = Pki.make(folder)
    signer = sendgrid_events.Signer()
    with contextlib.ExitStack() as stop:
        peer = stop.enter_context(sns.running(SnsPeer(pki)))
        fake_ses, fake_sendgrid = FakeSes().start(), FakeSendGrid().start()
        stop.callback(fake_ses.stop)
        stop.callback(fake_sendgrid.stop)
        values = api_providers(
            stack_settings(redis_server, smtp, twilio, folder, db), fake_ses, fake_sendgrid
        )
        values.update(
            ses_topic_arns=sns.TOPIC, sendgrid_webhook_public_key=signer.public_key, **settings
        )
        stack = start_stack(values, smtp, twilio, sns.loopback_env(peer, pki))
        stop.callback(stack.stop)
        yield Events(stack, fake_ses, fake_sendgrid, peer, pki, signer)


def api_providers(
    settings: dict[str, Any], fake_ses: FakeSes, fake_sendgrid: FakeSendGrid
) -> dict[str, Any]:
    """``settings`` (a stack's) with the mail route ``ses,sendgrid,smtp``, to the local SES and
    SendGrid."""
    del settings["mail_provider"]
    return {
        **settings,
        "mail_providers": "ses,sendgrid,smtp",
        "ses_region": ses.REGION,
        "ses_access_key_id": ses.ACCESS_KEY_ID,
        "ses_secret_access_key": ses.SECRET_ACCESS_KEY,
        "ses_configuration_set": ses.CONFIGURATION_SET,
        "ses_endpoint_url": fake_ses.base_url,
        "ses_timeout": 5,
        "sendgrid_api_key": sendgrid.API_KEY,
        "sendgrid_base_url": fake_sendgrid.base_url,
        "sendgrid_timeout": 5,
    }


def recipients(tag: str, n: int) -> list[str]:
    """``n`` addresses no other test uses."""
    return [address(f"{tag}{i}") for i in range(n)]


def record(events: Events, notification_id: str, who: str = "tester") -> dict[str, Any]:
    """The notification's status record as ``who`` sees it."""
    answer = events.stack.get_as(f"/v1/notifications/{notification_id}", who)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found

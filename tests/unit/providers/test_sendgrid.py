"""The SendGrid provider against the local SendGrid (which checks the key and the body): the body
it sends is the official helper's for the same mail, and each answer is sorted into a retry, a
failover or a failure."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sendgrid.helpers.mail import Bcc, Cc, CustomArg, From, Header, Mail, ReplyTo, To

from notifier.errors import NotForThisProvider
from notifier.providers.sendgrid import mail_send_body
from notifier.providers.signed_http import OperatorError
from tests.support.harness.mail import mail
from tests.support.peers import sendgrid

UNSUBSCRIBE = (("List-Unsubscribe", "<https://n.example/v1/unsubscribe/t>"),
               ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # fmt: skip


@pytest.fixture
def fake() -> Iterator[sendgrid.FakeSendGrid]:
    server = sendgrid.FakeSendGrid().start()
    yield server
    server.stop()


def test_the_body_is_the_official_helpers_for_the_same_mail(fake: sendgrid.FakeSendGrid) -> None:
    message = mail(
        "n7", sender="Acme <noreply@example.com>", cc=("cc@example.com",),
        bcc=("audit@example.com",), reply_to="Help <help@example.com>", subject="Grüße",
        text="Plain body", html="<p>Rich body</p>", headers=UNSUBSCRIBE,
    )  # fmt: skip
    helper = Mail(From("noreply@example.com", "Acme"), To("ada@example.com"), "Grüße",
                  "Plain body", "<p>Rich body</p>")  # fmt: skip
    helper.add_cc(Cc("cc@example.com"))
    helper.add_bcc(Bcc("audit@example.com"))
    helper.reply_to = ReplyTo("help@example.com", "Help")
    for name, value in (("X-Notification-Id", "n7"), *UNSUBSCRIBE):
        helper.header = Header(name, value)
    helper.custom_arg = CustomArg("notification_id", "n7")
    assert mail_send_body(message) == helper.get()

    provider = sendgrid.provider(fake.base_url)
    ref = provider.send_mail(message=message)
    (sent,) = fake.sent
    assert (ref, sent.body) == (sent.message_id, helper.get())
    provider.close()


def test_an_address_named_twice_goes_once_and_a_text_only_mail_has_one_part(
    fake: sendgrid.FakeSendGrid,
) -> None:
    # SendGrid tells addresses apart without regard to case, within one list too, and refuses
    # the whole mail for a second one (sendgrid-ruby#461).
    message = mail(to=("ada@example.com", "Ada@example.com", "ada@example.com"),
                   cc=("Ada@Example.com",), bcc=("audit@example.com",))  # fmt: skip
    sendgrid.provider(fake.base_url).send_mail(message=message)
    (sent,) = fake.sent
    assert sent.recipients == ["ada@example.com", "audit@example.com"]
    assert sent.body["content"] == [{"type": "text/plain", "value": "Plain body"}]
    assert "reply_to" not in sent.body


def test_a_mail_without_to_is_the_next_providers_without_a_call(
    fake: sendgrid.FakeSendGrid,
) -> None:
    """SendGrid's own limit, not the recipients': SES or SMTP after it carry a mail to Bcc only
    (with SendGrid alone it fails for good, as any mail no provider can carry)."""
    with pytest.raises(NotForThisProvider, match="without a To recipient"):
        sendgrid.provider(fake.base_url).send_mail(message=mail(to=(), bcc=("a@example.com",)))
    assert fake.requests == 0


@pytest.mark.parametrize(
    "change",
    [{"to": ("pepé@example.com",)}, {"bcc": ("josé@example.com",)}, {"sender": "ñu@example.com"}],
)
def test_an_address_that_is_not_ascii_is_the_next_providers_without_a_call(
    fake: sendgrid.FakeSendGrid, change: dict[str, Any]
) -> None:
    """SendGrid takes such a mail (202) and then drops it as invalid, and that event would
    suppress a good address: SMTP (SMTPUTF8) carries it, as when SES steps aside."""
    with pytest.raises(NotForThisProvider, match="not ASCII"):
        sendgrid.provider(fake.base_url).send_mail(message=mail(**change))
    assert fake.requests == 0


def test_what_sendgrid_itself_refuses_of_our_account_is_the_operators(
    fake: sendgrid.FakeSendGrid,
) -> None:
    with pytest.raises(OperatorError, match="sendgrid 401"):
        sendgrid.provider(fake.base_url, api_key="SG.revoked").send_mail(message=mail())
    with pytest.raises(OperatorError, match="verified Sender Identity"):
        sendgrid.provider(fake.base_url).send_mail(message=mail(sender="a@example.org"))
    assert fake.sent == []

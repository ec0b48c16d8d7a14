"""The SES provider, through boto3, against the local SES (which checks boto3's signature):
the raw message it sends, its DKIM signature after SES rewrote its Message-ID and Date, and
each of SES's refusals sorted into a retry, a failover or a failure."""

from __future__ import annotations

from collections.abc import Iterator

import dkim
import pytest

from notifier.errors import NotForThisProvider
from notifier.providers.dkim import DkimSigner, load_keys
from notifier.providers.signed_http import OperatorError
from tests.support.harness.dkim_keys import KeyPair
from tests.support.harness.mail import mail
from tests.support.peers import ses
from tests.support.peers.dns_server import DnsServer


@pytest.fixture
def fake() -> Iterator[ses.FakeSes]:
    server = ses.FakeSes().start()
    yield server
    server.stop()


def test_sends_the_raw_message_with_every_recipient_and_its_tag(fake: ses.FakeSes) -> None:
    provider = ses.provider(fake.base_url)
    unsubscribe = (("List-Unsubscribe", "<https://n.example/v1/unsubscribe/t>"),
                   ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click"))  # fmt: skip
    ref = provider.send_mail(message=mail(
        "n7", cc=("cc@example.com",), bcc=("audit@example.com",), headers=unsubscribe,
    ))  # fmt: skip
    (sent,) = fake.sent
    assert ref == sent.message_id
    assert sent.destination == {
        "ToAddresses": ["ada@example.com"], "CcAddresses": ["cc@example.com"],
        "BccAddresses": ["audit@example.com"],
    }  # fmt: skip
    assert (sent.tags, sent.configuration_set) == ({"notification_id": "n7"}, "notifier-events")
    head = sent.raw.split(b"\r\n\r\n")[0]
    for line in (
        b"X-Notification-Id: n7",
        b"List-Unsubscribe: <https://n.example/v1/unsub",
        b"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
        b"Message-ID: <n7.",
    ):
        assert line in head  # fmt: skip
    assert b"audit@example.com" not in head  # Bcc goes in the request, never in the message
    provider.close()


def test_without_a_configuration_set_none_is_named(fake: ses.FakeSes) -> None:
    ses.provider(fake.base_url, configuration_set=None).send_mail(message=mail())
    assert fake.sent[0].configuration_set is None


def test_the_dkim_signature_holds_after_ses_set_its_message_id_and_date(
    fake: ses.FakeSes, pair: KeyPair, dns_server: DnsServer
) -> None:
    signer = DkimSigner(load_keys({"example.com": {"selector": "s1", "private_key": pair.pem}}))
    ses.provider(fake.base_url, dkim=signer).send_mail(message=mail(
        headers=(("List-Unsubscribe", "<https://n.example/u/t>"),
                 ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    ))  # fmt: skip
    (sent,) = fake.sent
    assert sent.delivered.startswith(b"DKIM-Signature: ") and sent.delivered != sent.raw
    with dns_server.as_resolver():
        assert dkim.verify(sent.delivered)
        changed = sent.delivered.replace(
            b"List-Unsubscribe-Post: List", b"List-Unsubscribe-Post:  X"
        )
        assert not dkim.verify(changed)


def test_what_ses_itself_refuses_of_our_account_is_the_operators(fake: ses.FakeSes) -> None:
    with pytest.raises(OperatorError, match="ses InvalidSignatureException"):
        ses.provider(fake.base_url, secret_access_key="wrong").send_mail(message=mail())
    with pytest.raises(OperatorError, match="ses NotFoundException"):
        ses.provider(fake.base_url, configuration_set="gone").send_mail(message=mail())
    fake.identities.clear()
    with pytest.raises(OperatorError, match="not verified"):
        ses.provider(fake.base_url).send_mail(message=mail())
    assert fake.sent == []


def test_an_address_ses_cannot_carry_fails_without_a_call(fake: ses.FakeSes) -> None:
    # Not for SES, but for the next provider (SMTP carries it where the relay offers SMTPUTF8).
    with pytest.raises(NotForThisProvider, match="SMTPUTF8"):
        ses.provider(fake.base_url).send_mail(message=mail(to=("用户@example.com",)))
    assert fake.requests == 0

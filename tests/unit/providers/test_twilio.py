"""The Twilio provider, through the real SDK, against a local server in Twilio's REST format."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from notifier.embedded import free_port
from notifier.errors import NotForThisProvider, PermanentProviderError, TransientProviderError
from notifier.providers.twilio import TwilioSettings, TwilioSmsProvider
from tests.support.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio for one test."""
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


def provider(base_url: str, **kw: object) -> TwilioSmsProvider:
    values: dict[str, object] = {
        "account_sid": ACCOUNT_SID,
        "auth_token": AUTH_TOKEN,
        "from_": FROM,
        "base_url": base_url,
        "timeout": 2,
    }
    values.update(kw)
    return TwilioSmsProvider(TwilioSettings(**values))  # type: ignore[arg-type]


def test_sends_through_the_sdk(twilio: FakeTwilio) -> None:
    sms = provider(twilio.base_url)
    sid = sms.send_sms(to="+8613800138000", body="code 123456")
    assert sid.startswith("SM")
    assert twilio.received == [{"To": "+8613800138000", "From": FROM, "Body": "code 123456"}]
    sms.close()


def test_messaging_service_instead_of_a_number(twilio: FakeTwilio) -> None:
    sms = provider(twilio.base_url, from_=None, messaging_service_sid="MG123")
    sms.send_sms(to="+8613800138000", body="hi")
    assert twilio.received[0]["MessagingServiceSid"] == "MG123"
    assert "From" not in twilio.received[0]
    sms.close()


@pytest.mark.parametrize(
    ("status", "code", "sorted_as"),
    [
        (500, 20500, TransientProviderError), (503, 20503, TransientProviderError),
        (429, 20429, TransientProviderError),
        (401, 20003, TransientProviderError),  # our credentials, not the message
        (400, 21611, TransientProviderError),  # the From's queue is full: load
        (400, 21211, PermanentProviderError),  # an invalid number
        # A To and From that cannot go together (the country's sender rules, a network without
        # short codes, a number no SMS reaches): another provider may carry it, a retry
        # through Twilio would not.
        (400, 21612, NotForThisProvider),
    ],
)  # fmt: skip
def test_each_refusal_is_sorted_as_twilios_dictionary_reads_it(
    twilio: FakeTwilio, status: int, code: int, sorted_as: type[Exception]
) -> None:
    twilio.plan("+8613800138000", (status, code))
    sms = provider(twilio.base_url)
    with pytest.raises(sorted_as, match=f"Twilio {status} \\(code {code}\\)") as raised:
        sms.send_sms(to="+8613800138000", body="x")
    assert type(raised.value) is sorted_as  # not an operator's error, not another's
    sms.close()


@pytest.mark.parametrize("code", [21212, 21408, 21606, 21609, 21659])
def test_a_refusal_of_our_account_or_sender_is_the_operators_and_hands_over(
    twilio: FakeTwilio, code: int, caplog: pytest.LogCaptureFixture
) -> None:
    # Twilio answers these 400 like an invalid number (21211), but another provider may send
    # the message: the region not enabled for the account, a From not for this destination,
    # a To and From that cannot go together.
    twilio.plan("+8613800138000", (400, code))
    sms = provider(twilio.base_url)
    with pytest.raises(TransientProviderError, match=f"twilio {code}") as raised:
        sms.send_sms(to="+8613800138000", body="x")
    assert getattr(raised.value, "operator_error", False)
    assert [r.levelname for r in caplog.records if "refused our configuration" in r.message] == [
        "ERROR"
    ]
    sms.close()


def test_unreachable_is_transient() -> None:
    sms = provider(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(TransientProviderError, match="unreachable"):
        sms.send_sms(to="+8613800138000", body="x")
    sms.close()


@pytest.mark.parametrize(
    ("sender", "field"),
    [
        ("+15005550001", "From"),
        ("Acme", "From"),
        ("12345", "From"),  # a short code
        ("MG" + "0123456789abcdef" * 2, "MessagingServiceSid"),
    ],
)
def test_a_clients_sender_replaces_the_settings(
    twilio: FakeTwilio, sender: str, field: str
) -> None:
    """A client's sms_sender: a number or an alphanumeric id goes as From, a Messaging
    Service's SID as MessagingServiceSid, and never beside the settings' own sender."""
    sms = provider(twilio.base_url, from_=None, messaging_service_sid="MG" + "f" * 32)
    sms.send_sms(to="+8613800138000", body="hi", sender=sender)
    sms.send_sms(to="+8613800138000", body="hi")
    first, second = twilio.received
    assert first[field] == sender
    assert {"From", "MessagingServiceSid"} & set(first) == {field}
    assert second["MessagingServiceSid"] == "MG" + "f" * 32
    assert "From" not in second
    sms.close()


def test_the_fake_refuses_what_twilio_refuses_without_a_sender_or_a_body(
    twilio: FakeTwilio,
) -> None:
    """The fake holds the SDK's calls to Twilio's required parameters (errors 21603, 21602):
    a test of senders through it cannot pass with none."""
    senderless = provider(twilio.base_url, from_=None)
    with pytest.raises(PermanentProviderError, match=r"Twilio 400 \(code 21603\)"):
        senderless.send_sms(to="+8613800138000", body="hi")
    sms = provider(twilio.base_url)
    with pytest.raises(PermanentProviderError, match=r"Twilio 400 \(code 21602\)"):
        sms.send_sms(to="+8613800138000", body="")
    # Both at once is how Twilio is asked for one sender of the service's pool: taken.
    both = {"To": "+8613800138000", "From": FROM, "MessagingServiceSid": "MG" + "e" * 32,
            "Body": "hi"}  # fmt: skip
    answer = requests.post(
        f"{twilio.base_url}/2010-04-01/Accounts/{ACCOUNT_SID}/Messages.json",
        data=both, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5,
    )  # fmt: skip
    assert answer.status_code == 201 and twilio.received == [both]
    senderless.close()
    sms.close()

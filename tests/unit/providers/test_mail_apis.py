"""What the providers of mail through an HTTP API (SES, SendGrid) share, each against its local
stand-in: one kept connection for many mails, no call retried, a deadline on every call, and
each answer sorted into a retry or a failover (transient), the operator's problem (transient,
and logged at ERROR) or a failure (permanent)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from notifier.embedded import free_port
from notifier.errors import PermanentProviderError, TransientProviderError
from notifier.providers.base import MailProvider
from notifier.providers.signed_http import OperatorError
from notifier.redact import redact
from tests.support.harness.mail import mail
from tests.support.peers import sendgrid, ses
from tests.support.peers.http_peer import Answer, MailPeer, silent_server


@dataclass(frozen=True)
class Api:
    """A provider and its stand-in."""

    name: str
    peer: Callable[[], MailPeer[Any]]
    provider: Callable[..., MailProvider]  # (base URL, settings...)


SES = Api("ses", ses.FakeSes, ses.provider)
SENDGRID = Api("sendgrid", sendgrid.FakeSendGrid, sendgrid.provider)
SORTED = [
    # SES: botocore's service model for SendEmail, and the common errors (notifier/providers/ses.py).
    (SES, ses.THROTTLED, TransientProviderError),
    (SES, ses.QUOTA, TransientProviderError),
    (SES, ses.UNAVAILABLE, TransientProviderError),
    (SES, Answer(500, "InternalFailure", "oops"), TransientProviderError),
    (SES, ses.PAUSED, OperatorError),
    (SES, Answer(400, "AccountSuspendedException", "suspended"), OperatorError),
    (SES, Answer(400, "MailFromDomainNotVerifiedException", "not verified"), OperatorError),
    (SES, ses.UNVERIFIED, OperatorError),
    # A paused account said as MessageRejected (SES SMTP's "554 Message rejected: Sending
    # paused", GoodDollar/GoodServer#419): the account's, not the message's.
    (SES, Answer(400, "MessageRejected", "Sending paused for this account."), OperatorError),
    (SES, Answer(400, "SomethingNewException", "a code we do not know"), OperatorError),
    (SES, ses.REJECTED, PermanentProviderError),
    (SES, Answer(400, "BadRequestException", "Missing final '@domain'"), PermanentProviderError),
    # Our configuration, said as a bad request (the identity's default configuration set deleted).
    (
        SES,
        Answer(400, "BadRequestException", "Configuration set c1 does not exist."),
        OperatorError,
    ),
    (SES, Answer(400, "Throttling", "Rate exceeded"), TransientProviderError),
    # SendGrid: its status codes (notifier/providers/sendgrid.py).
    (SENDGRID, sendgrid.THROTTLED, TransientProviderError),
    (SENDGRID, sendgrid.UNAVAILABLE, TransientProviderError),
    (SENDGRID, Answer(500, "", "internal error"), TransientProviderError),
    (SENDGRID, sendgrid.UNAUTHORIZED, OperatorError),
    (SENDGRID, Answer(403, "", "access forbidden"), OperatorError),
    (SENDGRID, Answer(404, "", "not found"), OperatorError),
    (SENDGRID, sendgrid.INVALID_RECIPIENT, PermanentProviderError),
    (SENDGRID, Answer(413, "", "payload too large"), PermanentProviderError),
]


@pytest.fixture(params=[SES, SENDGRID], ids=lambda api: api.name)
def api(request: pytest.FixtureRequest) -> Api:
    found: Api = request.param
    return found


@pytest.fixture
def peer(api: Api) -> Iterator[MailPeer[Any]]:
    server = api.peer().start()
    yield server
    server.stop()


def test_one_connection_carries_many_mails_and_no_call_is_retried(
    api: Api, peer: MailPeer[Any]
) -> None:
    provider = api.provider(peer.base_url)
    refs = [provider.send_mail(message=mail(f"n{n}")) for n in range(5)]
    peer.plan("ada@example.com", Answer(503, "ServiceUnavailable", "down"))
    with pytest.raises(TransientProviderError):
        provider.send_mail(message=mail("n5"))
    # Six calls on one kept connection, the 503 tried once: retrying is the task's to decide.
    assert (peer.connections, peer.requests, len(peer.sent)) == (1, 6, 5)
    assert len(set(refs)) == 5 and all(refs)
    provider.close()


@pytest.mark.parametrize(
    ("api", "answer", "error"),
    SORTED,
    ids=[f"{a.name}-{answer.status}-{answer.code or answer.message}" for a, answer, _ in SORTED],
)
def test_each_answer_is_sorted(
    peer: MailPeer[Any],
    caplog: pytest.LogCaptureFixture,
    api: Api,
    answer: Answer,
    error: type[Exception],
) -> None:
    peer.plan("ada@example.com", answer)
    with pytest.raises(error) as caught, caplog.at_level(logging.ERROR):
        api.provider(peer.base_url).send_mail(message=mail())
    assert type(caught.value) is error
    assert getattr(caught.value, "provider", None) == api.name
    assert redact(answer.message) in str(caught.value)  # addresses in it masked
    # The operator's problems, and only those, are logged at ERROR (metrics and alerts count them).
    assert bool(caplog.records) is (error is OperatorError)


def test_unreachable_or_silent_is_transient_within_the_timeout(api: Api) -> None:
    with pytest.raises(TransientProviderError, match="unreachable: ConnectionError"):
        api.provider(f"http://127.0.0.1:{free_port()}").send_mail(message=mail())
    with silent_server() as url, pytest.raises(TransientProviderError, match=r"within 0\.5 s"):
        api.provider(url, timeout=0.5).send_mail(message=mail())

"""Every outbound call ends within its whole budget, however slowly the peer trickles its answer.

The peers (tests/support/peers/trickle.py) send a byte every 0.2 s, well inside any socket
timeout, for 8 s; a client with only a timeout a read would wait all of that and more.
"""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from notifier.deadline import (
    WATCHED_POOLS,
    Deadline,
    DeadlineAdapter,
    DeadlineExceeded,
    _watcher,
    let_go,
    session,
    watch,
)
from notifier.errors import TransientProviderError
from notifier.providers.smtp import SmtpMailProvider, SmtpSettings
from notifier.providers.twilio import TwilioSettings, TwilioSmsProvider
from notifier.services.callbacks import CallbackSender, Event
from tests.support.harness.mail import mail
from tests.support.harness.wait import wait_for
from tests.support.peers import aliyun, ses
from tests.support.peers.http_peer import send_captcha
from tests.support.peers.trickle import TricklingHttp, TricklingSmtp
from tests.support.peers.twilio import ACCOUNT_SID, AUTH_TOKEN, FROM, FakeTwilio

BUDGET = 1.0
# Past the budget: the watcher's wake-up and the error's way up, on a busy machine.
SLACK = 0.8
SECRET = "whsec_" + base64.b64encode(b"sixteen and more bytes").decode()


@pytest.fixture
def trickling() -> Iterator[TricklingHttp]:
    """An HTTP peer: a status line, then a header byte every 0.2 s, for 8 s."""
    server = TricklingHttp(every=0.2, lasts=8).start()
    yield server
    server.stop()


@pytest.fixture
def twilio() -> Iterator[FakeTwilio]:
    """A fake Twilio that answers at once."""
    fake = FakeTwilio().start()
    yield fake
    fake.stop()


@pytest.fixture
def trickling_smtp() -> Iterator[TricklingSmtp]:
    """An SMTP peer that trickles its replies once told to, a byte every 0.2 s, for 8 s."""
    server = TricklingSmtp(every=0.2, lasts=8).start()
    yield server
    server.stop()


def twilio_provider(base_url: str, timeout: float) -> TwilioSmsProvider:
    settings = {"account_sid": ACCOUNT_SID, "auth_token": AUTH_TOKEN, "from": FROM}
    return TwilioSmsProvider(
        TwilioSettings.model_validate({**settings, "base_url": base_url, "timeout": timeout})
    )


def took(call: Callable[[], object], error: type[BaseException], match: str) -> float:
    """Seconds ``call`` took to raise ``error``."""
    started = time.monotonic()
    with pytest.raises(error, match=match):
        call()
    return time.monotonic() - started


def test_a_request_ends_within_its_budget(trickling: TricklingHttp) -> None:
    with session(DeadlineAdapter(total=BUDGET, max_connections=1)) as http:
        elapsed = took(lambda: http.get(trickling.url), DeadlineExceeded, "within 1 s")
    assert BUDGET <= elapsed < BUDGET + SLACK


def test_a_request_through_a_proxy_that_trickles_ends_within_its_budget(
    trickling: TricklingHttp,
) -> None:
    with session(DeadlineAdapter(total=BUDGET, max_connections=1)) as http:
        http.trust_env = False
        call = lambda: http.get("http://example.com/", proxies={"http": trickling.url})  # noqa: E731
        elapsed = took(call, DeadlineExceeded, "within 1 s")
    assert elapsed < BUDGET + SLACK


def test_a_callback_to_a_receiver_that_trickles_ends_within_its_budget(
    trickling: TricklingHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("notifier.services.callbacks.TIMEOUT", BUDGET)
    sender = CallbackSender(production=False, max_connections=2)
    event = Event("n1", "sent", "msg_1", 1_795_000_000)
    post = lambda: sender.post(trickling.url + "/hook", SECRET, event, b"{}")  # noqa: E731
    assert took(post, requests.RequestException, "within 1 s") < BUDGET + SLACK
    sender.close()


def test_twilio_that_trickles_is_given_up_within_the_timeout(trickling: TricklingHttp) -> None:
    sms = twilio_provider(trickling.url, timeout=1)
    send = lambda: sms.send_sms(to="+8613800138000", body="code 123456")  # noqa: E731
    assert took(send, TransientProviderError, "DeadlineExceeded") < BUDGET + SLACK
    sms.close()


def test_aliyun_that_trickles_is_given_up_within_the_timeout(trickling: TricklingHttp) -> None:
    sms = aliyun.provider(trickling.url, timeout=1)
    send = lambda: send_captcha(sms)  # noqa: E731
    assert took(send, TransientProviderError, "DeadlineExceeded") < BUDGET + SLACK
    sms.close()


def test_ses_that_trickles_is_given_up_within_the_timeout(trickling: TricklingHttp) -> None:
    """boto3 sends through our session (botocore's own timeouts are a read's, not the call's)."""
    provider = ses.provider(trickling.url, timeout=1)
    send = lambda: provider.send_mail(message=mail())  # noqa: E731
    assert took(send, TransientProviderError, "DeadlineExceeded") < BUDGET + SLACK
    provider.close()


def test_ses_through_a_proxy_named_in_the_environment_goes_through_it(
    trickling: TricklingHttp, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Straight to SES unless a proxy is set; with one, through it (here a proxy that trickles:
    the call reached it, and still ended within its budget)."""
    monkeypatch.setenv("HTTP_PROXY", trickling.url)
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    provider = ses.provider("http://ses.invalid", timeout=1)
    send = lambda: provider.send_mail(message=mail())  # noqa: E731
    assert took(send, TransientProviderError, "DeadlineExceeded") < BUDGET + SLACK
    assert trickling.connections >= 1
    provider.close()


def test_an_smtp_greeting_that_trickles_is_given_up_within_the_timeout(
    trickling_smtp: TricklingSmtp,
) -> None:
    trickling_smtp.trickling.set()
    smtp = SmtpMailProvider(SmtpSettings(server="127.0.0.1", port=trickling_smtp.port, timeout=1))
    send = lambda: smtp.send_mail(message=mail())  # noqa: E731
    assert took(send, TransientProviderError, "more than 1 s in all") < BUDGET + SLACK
    smtp.close()


def test_an_smtp_reply_on_a_kept_connection_that_trickles_is_given_up_within_the_timeout(
    trickling_smtp: TricklingSmtp,
) -> None:
    smtp = SmtpMailProvider(SmtpSettings(server="127.0.0.1", port=trickling_smtp.port, timeout=1))
    smtp.send_mail(message=mail())
    trickling_smtp.trickling.set()  # the same connection, now slow to answer
    send = lambda: smtp.send_mail(message=mail())  # noqa: E731
    assert took(send, TransientProviderError, "more than 1 s in all") < BUDGET + SLACK
    assert (trickling_smtp.connections, trickling_smtp.mails) == (1, 1)
    smtp.close()


def test_a_connection_another_call_took_is_not_cut_by_the_deadline_that_let_it_go() -> None:
    """A pool hands a connection on as soon as its answer is read: the next call's, not ours."""
    ours, peer = socket.socketpair()
    connection = object()  # what a pool hands out
    taken, done = threading.Event(), threading.Event()

    def next_call() -> None:
        with Deadline(30):
            watch(connection, ours)
            taken.set()
            done.wait(10)

    with Deadline(0.2) as first:
        watch(connection, ours)
        threading.Thread(target=next_call, daemon=True).start()
        assert taken.wait(10)
        wait_for(lambda: first.expired, timeout=5, what="the first deadline to run out")
    ours.sendall(b"still open")
    assert peer.recv(64) == b"still open"
    done.set()
    ours.close()
    peer.close()


def test_a_connection_its_deadline_owns_is_cut() -> None:
    ours, peer = socket.socketpair()
    with Deadline(0.2) as deadline:
        watch(object(), ours)
        assert ours.recv(1) == b""  # blocked until the deadline shut the socket down
    assert deadline.expired
    ours.close()
    peer.close()


def test_a_deadline_shorter_than_those_before_it_still_cuts_in_time() -> None:
    """The watcher sleeps until the earliest deadline it knows: a later, shorter one wakes it."""
    ours, peer = socket.socketpair()
    with Deadline(30), Deadline(30) as long:
        with Deadline(0.2):  # another thread's, say: ends first
            watch(object(), ours)
            assert ours.recv(1) == b""
        assert not long.expired
    ours.close()
    peer.close()


class Kept:
    """A pool's connection object (any object a weak reference can point to)."""


def open_descriptors() -> int:
    return len(list(Path("/proc/self/fd").iterdir()))


def test_a_kept_connection_is_watched_on_one_duplicate_until_it_is_let_go() -> None:
    ours, peer = socket.socketpair()
    connection = Kept()
    before = open_descriptors()
    for _ in range(3):
        with Deadline(30):
            watch(connection, ours, kept=True)
        assert open_descriptors() == before + 1  # one duplicate, kept for the next call
    ours.close()
    peer.settimeout(0.2)
    with pytest.raises(TimeoutError):
        peer.recv(1)  # the duplicate holds the connection open...
    let_go(connection)
    assert open_descriptors() == before - 1
    peer.settimeout(5)
    assert peer.recv(1) == b""  # ...until it is let go
    peer.close()


def test_a_kept_connection_its_deadline_owns_is_cut() -> None:
    ours, peer = socket.socketpair()
    connection = Kept()
    with Deadline(30):
        watch(connection, ours, kept=True)
    with Deadline(0.2) as deadline:
        watch(connection, ours, kept=True)
        assert ours.recv(1) == b""
    assert deadline.expired
    let_go(connection)
    ours.close()
    peer.close()


def test_a_kept_connections_duplicate_goes_with_it() -> None:
    ours, peer = socket.socketpair()
    connection = Kept()
    before = open_descriptors()
    with Deadline(30):
        watch(connection, ours, kept=True)
    del connection
    assert open_descriptors() == before
    ours.close()
    peer.close()


def test_a_pooled_http_connection_keeps_one_duplicate_until_it_closes(twilio: FakeTwilio) -> None:
    """Calls on a kept-alive HTTP connection share one duplicate of its socket (no dup and close
    a call), which goes as the connection closes, though its pool keeps the object to connect
    again: it would hold the closed connection open."""
    pool = WATCHED_POOLS["http"]("127.0.0.1", int(twilio.base_url.rsplit(":", 1)[1]), maxsize=1)
    connection = pool._get_conn()
    connection.connect()
    duplicates = set()
    for _ in range(5):
        with Deadline(30):
            connection.request("GET", "/")
            connection.getresponse().read()
        duplicates.add(_watcher._kept[connection][1])
    (duplicate,) = duplicates  # one for every call
    assert duplicate.fileno() != -1
    connection.close()
    assert duplicate.fileno() == -1
    assert connection not in _watcher._kept
    pool.close()


def test_calls_that_answer_in_time_keep_their_connection(twilio: FakeTwilio) -> None:
    sms = twilio_provider(twilio.base_url, timeout=BUDGET)
    for _ in range(3):
        assert sms.send_sms(to="+8613800138000", body="code 123456").startswith("SM")
    assert twilio.connections == 1
    sms.close()


def test_a_connection_opened_after_the_time_is_up_is_closed_and_refused() -> None:
    ours, peer = socket.socketpair()
    with Deadline(0.05) as deadline:
        wait_for(lambda: deadline.expired, timeout=5, what="the deadline to run out")
        with pytest.raises(DeadlineExceeded, match=r"within 0\.05 s"):
            watch(object(), ours)
    assert ours.fileno() == -1
    peer.close()

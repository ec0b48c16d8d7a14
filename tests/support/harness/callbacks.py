"""The stack of the tests of receipts, status callbacks and test keys: a public URL, so Twilio is
told where to post receipts, and two clients beside the tests' own whose callbacks each go to a
receiver of their own, a live one (``hooked``) and a test key's (``integrator``)."""

from __future__ import annotations

import base64
import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.harness.clients import api_keys_with, callback_client
from tests.support.harness.stack import Stack, stack_settings, start_stack
from tests.support.peers.receiver import CallbackReceiver
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

HOOKED_KEY = "ntf_test-key-of-a-client-with-callbacks"
HOOKED_SECRET = "whsec_" + base64.b64encode(b"the hooked client's callback secret").decode()
TEST_KEY = "ntf_test-key-of-an-integrating-team"
TEST_SECRET = "whsec_" + base64.b64encode(b"an integrator's callback secret").decode()
# Where Twilio is told to post receipts: a proxy's public name, not the web's own address.
PUBLIC_URL = "https://notifier.example.com"


@dataclass
class Callbacks:
    """The stack and the receivers of its two clients with callbacks: the live ``hooked``'s
    and the test key's (``integrator``)."""

    stack: Stack
    live: CallbackReceiver
    test: CallbackReceiver


@contextlib.contextmanager
def callbacks_stack(
    redis_server: RedisServer, smtp: SmtpSink, twilio: FakeTwilio, state: Path
) -> Iterator[Callbacks]:
    """The stack (its Redis database 8; a killed worker's messages come back within a test's
    patience) and both receivers, started; stopped in turn."""
    with contextlib.ExitStack() as stop:
        live, test = CallbackReceiver(), CallbackReceiver()
        stop.callback(test.stop)
        stop.callback(live.stop)
        clients = (
            callback_client("hooked", HOOKED_KEY, live.url, HOOKED_SECRET),
            callback_client("integrator", TEST_KEY, test.url, TEST_SECRET, mode="test"),
        )
        settings = stack_settings(redis_server, smtp, twilio, state, 8)
        settings.update(
            public_url=PUBLIC_URL, api_keys=api_keys_with(*clients), broker_visibility_timeout=10
        )
        stack = start_stack(settings, smtp, twilio)
        stop.callback(stack.stop)
        yield Callbacks(stack, live, test)

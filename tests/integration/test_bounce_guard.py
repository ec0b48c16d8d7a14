"""The bounce-rate guard, end to end: mails sent through the local SES by a real worker, a signed
bounce posted back through SNS, the client's mail paused (403 naming the rate) while another
client's is not, and resumed by the operator's command; a replay changes nothing."""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.harness.events import Events, events_stack, recipients
from tests.support.harness.processes import BIN, ROOT
from tests.support.peers import ses_events as documented
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

pytestmark = pytest.mark.integration
VOLUME = 10  # the guard's minimum volume here: one bounce in ten is the pause rate


@pytest.fixture(scope="module")
def events(
    redis_server: RedisServer,
    smtp: SmtpSink,
    twilio: FakeTwilio,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Events]:
    """The session's events stack as tests/integration/conftest.py makes it, but a stack of its
    own (its Redis database 13) whose guard weighs a client's rates from VOLUME mails."""
    folder = Path(tmp_path_factory.mktemp("guarded"))
    with events_stack(redis_server, smtp, twilio, folder, 13, bounce_guard_min_volume=VOLUME) as s:
        yield s


def metric(events: Events, name: str, client: str) -> float:
    text = requests.get(f"{events.stack.base}/metrics", timeout=10).text
    found = re.search(rf'^{name}{{client="{client}"}} (\S+)$', text, re.M)
    assert found, text
    return float(found[1])


def test_a_client_bouncing_past_the_rate_is_paused_until_resumed(events: Events) -> None:
    shop = [events.sent_by_ses(to, "shop") for to in (recipients("shop", 1) for _ in range(VOLUME))]
    for to in (recipients("bank", 1) for _ in range(VOLUME)):
        events.sent_by_ses(to, "bank")
    assert metric(events, "notifier_mail_guard_volume", "shop") == VOLUME
    # One of the shop's ten mails bounces for good: 10%, the pause rate.
    _, sent = shop[0]
    bounce = documented.for_mail(sent, "Bounce", documented.bounce(sent.recipients))
    assert events.post_ses(bounce).json() == {"outcome": "moved"}
    refused = events.stack.post("/v1/mail", {"to": recipients("more", 1), "subject": "Hi",
                                             "text": "x"}, who="shop")  # fmt: skip
    assert refused.status_code == 403, refused.text
    assert "its bounce rate over 24 h reached 10.0% (1 of 10 mails)" in refused.json()["detail"]
    assert metric(events, "notifier_mail_guard_paused", "shop") == 1
    # The bank's mail goes, and so do the shop's codes by mail.
    assert events.post_mail(recipients("bank-more", 1), "bank")
    code = events.stack.post("/v1/mail/captcha", {"to": recipients("code", 1)[0],
                                                  "purpose": "login"}, who="shop")  # fmt: skip
    assert code.status_code == 202, code.text
    # The operator resumes the shop; its window starts again.
    resumed = subprocess.run(
        [str(BIN / "notifier"), "clients", "resume", "shop"], cwd=ROOT, env=events.stack.env,
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert resumed.returncode == 0, resumed.stderr
    assert "shop: mail resumed" in resumed.stdout
    assert events.post_mail(recipients("again", 1), "shop")
    # The same bounce, posted again, changes nothing: the shop stays unpaused.
    assert events.post_ses(bounce).json() == {"outcome": "duplicate"}
    assert metric(events, "notifier_mail_guard_paused", "shop") == 0
    assert events.post_mail(recipients("still", 1), "shop")

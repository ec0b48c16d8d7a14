"""The operator console's message log and timeline, end to end: a mail posted over HTTP, sent by
a real worker through the local SES, its delivery event posted back signed through SNS; then
the log, read as the console reads it, finds it by its recipient and its client, and its
timeline tells each step."""

from __future__ import annotations

import pytest

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.message_log import LogFilter, page, timeline
from tests.support.harness.events import Events, recipients, record
from tests.support.peers import ses_events as documented

pytestmark = pytest.mark.integration
EVENTS_DB = 14


@pytest.fixture
def rt(events: Events, monkeypatch: pytest.MonkeyPatch) -> Runtime:
    """A runtime with the stack's own settings (its Redis, its captcha secret), as the console
    in its web process has."""
    for name, value in events.stack.env.items():
        if name.startswith("NOTIFIER_"):
            monkeypatch.setenv(name, value)
    found: Runtime = create_app(Settings(_env_file=None)).extensions["notifier"]  # type: ignore[call-arg]
    return found


def test_a_sent_mail_is_in_the_log_and_its_timeline_tells_each_step(
    events: Events, rt: Runtime
) -> None:
    to = recipients("logged", 1)
    notification_id, sent = events.sent_by_ses(to)
    delivered = documented.for_mail(sent, "Delivery", documented.delivery(to))
    assert events.post_ses(delivered).json() == {"outcome": "moved"}
    assert record(events, notification_id)["status"] == "delivered"

    stored = rt.store.get(notification_id)
    assert stored is not None
    (found,) = page(rt, LogFilter(recipient=to[0].upper())).rows
    assert found == stored
    mine = page(rt, LogFilter(client=stored.client, kind="mail", status="delivered"), limit=5)
    assert mine.rows[0].id == notification_id
    assert page(rt, LogFilter(client="nobody", recipient=to[0])).rows == []

    steps = timeline(rt, notification_id)
    assert steps is not None
    assert [(s.what, s.provider, s.outcome) for s in steps] == [
        ("accepted", None, None),
        ("queued", None, None),
        ("attempt", "ses", "sent"),
        ("receipt", "ses", "delivered"),
    ]
    assert all(to[0] not in repr(s) for s in steps)

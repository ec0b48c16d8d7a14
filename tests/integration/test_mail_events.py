"""Mail providers' events, end to end: a mail from HTTP through Redis and a real worker to the
local SES or SendGrid, then the provider's events posted back signed (SES's through SNS, whose
certificate the web process fetches over HTTPS from the local SNS server), and what they do to
the record and the suppression list; and the operator console's message log and timeline, which
find such a mail by its recipient and its client and tell each step. (One module, so one stack
serves them: 3.5 s of CPU a start.)"""

from __future__ import annotations

import json

import pytest

from config import Settings
from notifier import create_app
from notifier.runtime import Runtime
from notifier.services.message_log import LogFilter, page, timeline
from tests.support.harness.events import Events, recipients, record
from tests.support.peers import sendgrid_events as sg
from tests.support.peers import ses_events as documented
from tests.support.peers import sns

pytestmark = pytest.mark.integration


def test_ses_confirms_our_subscription_through_the_web_process(events: Events) -> None:
    body = sns.sign(sns.confirmation(), events.pki.signing_key)
    answer = events.post_sns(json.dumps(body).encode())
    assert answer.status_code == 200 and answer.json() == {"outcome": "confirmed"}
    assert len(events.sns.confirmations()) == 1
    # The certificate was fetched over HTTPS from the SNS host, as in production (by the web
    # process that took the post, or earlier by the other, for test_redis_holds_no_recipient).
    fetched = [s.host for s in events.sns.requests_for(sns.CERT_PATH)]
    assert fetched and set(fetched) == {sns.HOST}


def test_one_ses_bounce_naming_three_recipients_undelivers_and_suppresses_each(
    events: Events,
) -> None:
    to = recipients("bounced", 3)
    notification_id, sent = events.sent_by_ses(to)
    assert record(events, notification_id)["provider_ref"] == sent.message_id
    bounce = documented.for_mail(sent, "Bounce", documented.bounce(to), "notificationType")
    answer = events.post_ses(bounce)
    assert answer.status_code == 200 and answer.json() == {"outcome": "moved"}
    found = record(events, notification_id)
    assert found["status"] == "undelivered" and found["error"].startswith("bounced: 5.1.1")
    assert [events.suppression(a) for a in to] == ["bounced"] * 3
    # The same event again, and a late delivery: nothing moves.
    assert events.post_ses(bounce).json() == {"outcome": "duplicate"}
    late = documented.for_mail(sent, "Delivery", documented.delivery(to[:1]))
    assert events.post_ses(late).json() == {"outcome": "duplicate"}
    assert record(events, notification_id) == found


def test_ses_delivery_complaint_and_delay_in_the_configuration_sets_form(events: Events) -> None:
    to = recipients("liked", 2)
    notification_id, sent = events.sent_by_ses(to)
    assert sent.tags == {"notification_id": notification_id}
    delay = documented.for_mail(sent, "DeliveryDelay", documented.delay(to[1:]))
    assert events.post_ses(delay).json() == {"outcome": "noted"}
    delivered = documented.for_mail(sent, "Delivery", documented.delivery(to[:1]))
    assert events.post_ses(delivered).json() == {"outcome": "moved"}
    complaint = documented.for_mail(sent, "Complaint", documented.complaint(to[:1]))
    assert events.post_ses(complaint, version="1").json() == {"outcome": "noted"}
    found = record(events, notification_id)
    assert found["status"] == "delivered"
    assert found["complaint"] == {"type": "abuse", "at": documented.LATER}
    assert found["soft_bounce"]["status"] == "4.4.1"
    assert (events.suppression(to[0]), events.suppression(to[1])) == ("complained", None)
    send = documented.for_mail(sent, "Send", documented.SEND)
    assert events.post_ses(send).json() == {"outcome": "ignored"}


def test_an_ses_reject_undelivers_the_mail(events: Events) -> None:
    to = recipients("rejected", 1)
    notification_id, sent = events.sent_by_ses(to)
    assert events.post_ses(documented.for_mail(sent, "Reject", documented.REJECT)).ok
    found = record(events, notification_id)
    assert (found["status"], found["error"]) == ("undelivered", "refused by ses: Bad content")
    assert events.suppression(to[0]) is None


def test_an_ses_event_not_signed_by_sns_or_of_another_topic_is_403(events: Events) -> None:
    to = recipients("forged", 1)
    notification_id, sent = events.sent_by_ses(to)
    bounce = documented.for_mail(sent, "Bounce", documented.bounce(to))
    other = "arn:aws:sns:us-east-1:999999999999:attackers-own"
    assert events.post_ses(bounce, topic=other).status_code == 403
    forged = documented.signed(bounce, events.pki.signing_key).replace(b"Permanent", b"Permanenx")
    assert events.post_sns(forged).status_code == 403
    assert record(events, notification_id)["status"] == "sent"
    assert events.suppression(to[0]) is None


def test_a_signed_sendgrid_batch_moves_each_of_its_mails(events: Events) -> None:
    (a,), (b,), (c,) = recipients("sg-a", 1), recipients("sg-b", 1), recipients("sg-c", 1)
    first, sent_a = events.sent_by_sendgrid([a])
    second, sent_b = events.sent_by_sendgrid([b])
    third, sent_c = events.sent_by_sendgrid([c])
    assert record(events, first)["provider"] == "sendgrid"
    batch = [
        sg.event("processed", sent_a, a), sg.delivered(sent_a, a), sg.bounced(sent_b, b),
        sg.deferred(sent_c, c), sg.spamreport(sent_a, a),
    ]  # fmt: skip
    answer = events.post_sendgrid(batch)
    assert answer.status_code == 200 and answer.json() == {"outcome": "moved"}
    assert [record(events, n)["status"] for n in (first, second, third)] == [
        "delivered", "undelivered", "sent",
    ]  # fmt: skip
    assert record(events, third)["soft_bounce"]["status"] == "deferred"
    assert record(events, first)["complaint"]["type"] == "abuse"
    assert (events.suppression(a), events.suppression(b)) == ("complained", "bounced")
    assert events.post_sendgrid(batch).json() == {"outcome": "duplicate"}


def test_a_sendgrid_post_signed_with_another_key_is_403(events: Events) -> None:
    (to,) = recipients("sg-forged", 1)
    notification_id, sent = events.sent_by_sendgrid([to])
    answer = events.post_sendgrid([sg.bounced(sent, to)], signer=sg.Signer())
    assert answer.status_code == 403
    assert record(events, notification_id)["status"] == "sent"
    assert events.suppression(to) is None


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

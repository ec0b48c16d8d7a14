"""Mail providers' events: SES's and SendGrid's read from the shapes their documentation shows,
and applied to records, suppression lists and the bounce-rate guard (a real Redis, mails sent by
the in-memory provider under SES's or SendGrid's name)."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
from flask import Flask

from config import ApiClient, Settings
from notifier import create_app
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.schemas import Notification
from notifier.services.mail import deliver_mail
from notifier.services.mail_events import MailEvent, sendgrid_events, ses_events
from tests.support.delivery import delivery
from tests.support.harness.clients import api_clients, callback_client
from tests.support.harness.mail import PAYLOAD
from tests.support.peers import ses_events as documented
from tests.support.peers.sendgrid_events import DOCUMENTED

CLIENT = "hooked"
LATER = documented.LATER
A, B, C = "ada@example.com", "bob@example.com", "cy@example.com"
LISTED = "OnAccountSuppressionList"


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    """A runtime whose client 'hooked' wants status callbacks; its guard at 10 mails."""
    hooked = callback_client(CLIENT, "ntf_hooked", "http://127.0.0.1:9/hook", "whsec_" + "A" * 24)
    app: Flask = create_app(
        make_settings(
            api_keys=[*api_clients(), ApiClient.model_validate(hooked)],
            bounce_guard_min_volume=10,
        )
    )
    found: Runtime = app.extensions["notifier"]
    return found


def mail(rt: Runtime, n: str, to: Sequence[str], provider: str = "ses") -> str:
    """A mail to ``to`` sent by ``provider``; its ref is ``<n@provider>``."""
    payload = {**PAYLOAD, "client": CLIENT, "to": list(to), "cc": [], "bcc": []}
    rt.store.create(notification_id=n, client=CLIENT, kind="mail", payload=payload)
    assert deliver_mail(delivery(rt, mail=MemoryMailProvider(name=provider)), n).status == "sent"
    return f"<{n}@{provider}>"


def record(rt: Runtime, n: str) -> Notification:
    found = rt.store.get(n)
    assert found is not None
    return found


def ses(rt: Runtime, kind: str, ref: str, to: Sequence[str], detail: dict[str, Any],
        form: documented.Form = "eventType") -> str:  # fmt: skip
    message = documented.event(kind, ref, to, detail, form=form)
    return rt.mail_events.apply(ses_events_of(message))


def ses_events_of(message: dict[str, Any]) -> list[MailEvent]:
    return ses_events(json.dumps(message))


def callbacks(rt: Runtime) -> list[tuple[str, str]]:
    """The callbacks queued, oldest first: (notification, status)."""
    import base64

    raw = reversed(rt.redis.lrange("callbacks", 0, -1))
    return [tuple(json.loads(base64.b64decode(json.loads(m)["body"]))[0][:2]) for m in raw]


def reason(rt: Runtime, address: str) -> str | None:
    entry = rt.suppressions.get(CLIENT, address)
    return None if entry is None else entry.reason


# -- reading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("form", ["notificationType", "eventType"])
def test_ses_events_are_read_in_both_forms(form: documented.Form) -> None:
    def read(kind: str, detail: dict[str, Any]) -> list[tuple[str, str, str]]:
        found = ses_events_of(documented.event(kind, "m-1", [A, B, C], detail, form=form))
        assert {e.ref for e in found} <= {"m-1"} and {e.provider for e in found} <= {"ses"}
        return [(e.kind, e.recipient, e.status) for e in found]

    assert read("Bounce", documented.bounce([A, B])) == [
        ("bounced", A, "5.1.1"), ("bounced", B, "5.1.1"),
    ]  # fmt: skip
    # Without a DSN, the bounce's subtype stands for its status.
    assert read("Bounce", documented.bounce([A], dsn=False)) == [("bounced", A, "General")]
    assert read("Bounce", documented.bounce([C], permanent=False)) == [("soft", C, "4.2.2")]
    assert read("Delivery", documented.delivery([A, C])) == [
        ("delivered", A, ""), ("delivered", C, ""),
    ]  # fmt: skip
    (complaint,) = ses_events_of(
        documented.event("Complaint", "m-1", [A], documented.complaint([A]), form=form)
    )
    assert (complaint.kind, complaint.recipient, complaint.feedback) == ("complained", A, "abuse")
    assert complaint.at == "2026-12-03T10:00:04.512Z"
    (bare,) = ses_events_of(
        documented.event("Complaint", "m-1", [A], documented.complaint([A], feedback=None))
    )
    assert bare.feedback is None and bare.at == "2026-12-03T10:00:04.512Z"


def test_the_events_only_a_configuration_set_publishes_are_read_or_ignored() -> None:
    def read(kind: str, detail: dict[str, Any]) -> list[tuple[str, str, str, str]]:
        found = ses_events_of(documented.event(kind, "m-1", [A], detail))
        return [(e.kind, e.recipient, e.status, e.reason) for e in found]

    assert read("Reject", documented.REJECT) == [("failed", "", "", "Bad content")]
    assert read("DeliveryDelay", documented.delay([A])) == [("soft", A, "4.4.1", "")]
    assert read("Send", documented.SEND) == []
    assert read("Open", documented.OPEN) == []
    for junk in ("", "[]", "{}", '{"eventType": "Bounce"}', '{"eventType": "Bounce", "mail": 7}'):
        assert ses_events(junk) == []


def test_sendgrid_events_are_read_as_its_reference_names_them() -> None:
    def item(event: str, **more: Any) -> dict[str, Any]:
        return {"email": A, "event": event, "timestamp": 1700000000,
                "sg_message_id": "XM.filterdrecv-1.0", **more}  # fmt: skip

    found = sendgrid_events([
        item("processed"), item("delivered", response="250 OK"),
        item("bounce", type="bounce", status="5.1.1", reason="550 no such user"),
        item("bounce", type="blocked", status="4.0.0", reason="421 try later"),
        item("deferred", response="400 try again later", attempt="5"),
        item("dropped", reason="Bounced Address"), item("spamreport"), item("open"),
        item("delivered", sg_message_id=""), {"event": "delivered", "sg_message_id": "XM.x"},
    ])  # fmt: skip
    assert [(e.kind, e.status, e.diagnostic, e.reason) for e in found] == [
        ("delivered", "", "", ""),
        ("bounced", "5.1.1", "550 no such user", ""),
        ("soft", "4.0.0", "421 try later", ""),
        ("soft", "deferred", "400 try again later", ""),
        ("dropped", "", "", "Bounced Address"),
        ("complained", "", "", ""),
    ]
    assert {e.ref for e in found} == {"XM"} and found[0].at == "2023-11-14T22:13:20.000Z"
    assert found[-1].feedback == "abuse"
    # SendGrid's own example: its message id before the ".filter…" suffix.
    (documented,) = sendgrid_events(json.loads(DOCUMENTED.payload))
    assert (documented.ref, documented.kind) == ("LRzXl_NHStOGhQ4kofSm_A", "dropped")
    assert documented.suppress == "bounced"


# -- applying --------------------------------------------------------------------------------


def test_a_delivery_moves_the_mail_and_tells_the_client(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A])
    assert ses(rt, "Delivery", ref, [A], documented.delivery([A])) == "moved"
    assert record(rt, "n1").status == "delivered"
    assert callbacks(rt) == [("n1", "sent"), ("n1", "delivered")]
    assert ses(rt, "Delivery", ref, [A], documented.delivery([A])) == "duplicate"
    assert len(callbacks(rt)) == 2


def test_a_permanent_bounce_makes_it_undelivered_suppresses_and_counts(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A])
    assert ses(rt, "Bounce", ref, [A], documented.bounce([A]), "notificationType") == "moved"
    found = record(rt, "n1")
    assert found.status == "undelivered"
    assert found.error == "bounced: 5.1.1 smtp; 550 5.1.1 <a***@example.com>... User unknown"
    assert reason(rt, A) == "bounced"
    assert rt.guard.figures([CLIENT])[CLIENT].counts == {"bounce": 1, "complaint": 0}
    assert callbacks(rt)[-1] == ("n1", "undelivered")


def test_one_event_naming_three_recipients_moves_the_mail_and_suppresses_each(
    rt: Runtime,
) -> None:
    ref = mail(rt, "n1", [A, B, C])
    assert record(rt, "n1").status == "sent"
    # Two of three: the mail is not undelivered yet, each address suppressed.
    assert ses(rt, "Bounce", ref, [A, B, C], documented.bounce([A, B])) == "noted"
    assert record(rt, "n1").status == "sent"
    assert ses(rt, "Bounce", ref, [A, B, C], documented.bounce([A, B, C])) == "moved"
    assert record(rt, "n1").status == "undelivered"
    assert [reason(rt, a) for a in (A, B, C)] == ["bounced"] * 3
    # The mail's bounce counts once in the guard, however many of its recipients bounced.
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 1


def test_a_mail_delivered_to_one_is_delivered_whoever_else_bounced(rt: Runtime) -> None:
    first, second = mail(rt, "n1", [A, B]), mail(rt, "n2", [A, B])
    # In either order.
    assert ses(rt, "Bounce", first, [A, B], documented.bounce([B])) == "noted"
    assert ses(rt, "Delivery", first, [A, B], documented.delivery([A])) == "moved"
    assert ses(rt, "Delivery", second, [A, B], documented.delivery([A])) == "moved"
    assert ses(rt, "Bounce", second, [A, B], documented.bounce([B])) == "noted"
    assert record(rt, "n1").status == record(rt, "n2").status == "delivered"
    assert (reason(rt, A), reason(rt, B)) == (None, "bounced")


def test_a_record_never_moves_back_and_a_replay_changes_nothing(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A])
    bounce = ses_events_of(documented.event("Bounce", ref, [A], documented.bounce([A])))
    delivered = ses_events_of(documented.event("Delivery", ref, [A], documented.delivery([A])))
    assert rt.mail_events.apply(bounce) == "moved"
    assert rt.mail_events.apply(delivered) == "duplicate"
    assert record(rt, "n1").status == "undelivered"
    # The client takes the address off its list; the same bounce, replayed, does not put it
    # back, nor count again.
    rt.suppressions.remove(CLIENT, A)
    before = rt.redis.hgetall(f"notifier:{{{'n'}}}:metrics")
    assert rt.mail_events.apply(bounce) == "duplicate"
    assert reason(rt, A) is None
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 1
    assert rt.redis.hgetall(f"notifier:{{{'n'}}}:metrics") == before
    assert len(callbacks(rt)) == 2  # sent, undelivered


def test_a_transient_bounce_or_a_delay_is_a_soft_bounce_on_the_record(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A])
    assert ses(rt, "DeliveryDelay", ref, [A], documented.delay([A])) == "noted"
    found = record(rt, "n1")
    assert found.status == "sent" and found.soft_bounce is not None
    assert found.soft_bounce.model_dump() == {
        "status": "4.4.1",
        "diagnostic": "smtp; 421 4.4.1 Unable to connect to remote host",
        "at": "2026-12-03T10:00:04.512Z",
    }
    # A later one replaces it; one of the same time (a copy) does not.
    later = {**documented.bounce([A], permanent=False), "timestamp": "2026-12-03T10:05:00Z"}
    assert ses(rt, "Bounce", ref, [A], {**later, "timestamp": LATER}) == "duplicate"
    assert ses(rt, "Bounce", ref, [A], later) == "noted"
    soft = record(rt, "n1").soft_bounce
    assert soft is not None and (soft.status, soft.at) == ("4.2.2", "2026-12-03T10:05:00.000Z")
    assert reason(rt, A) is None
    assert "soft_bounce" in record(rt, "n1").public()


def test_a_complaint_suppresses_notes_and_tells_the_client_once(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A, B])
    assert ses(rt, "Delivery", ref, [A, B], documented.delivery([A, B])) == "moved"
    complaint = documented.complaint([A])
    assert ses(rt, "Complaint", ref, [A, B], complaint, "notificationType") == "noted"
    found = record(rt, "n1")
    assert found.status == "delivered"
    assert found.public()["complaint"] == {"type": "abuse", "at": "2026-12-03T10:00:04.512Z"}
    assert reason(rt, A) == "complained"
    assert callbacks(rt)[-1] == ("n1", "delivered")
    assert ses(rt, "Complaint", ref, [A, B], complaint) == "duplicate"
    assert ses(rt, "Complaint", ref, [A, B], documented.complaint([B], feedback="fraud")) == "noted"
    assert reason(rt, B) == "complained"
    assert record(rt, "n1").public()["complaint"]["type"] == "abuse"  # the first is kept
    assert len(callbacks(rt)) == 3  # sent, delivered, the complaint
    assert rt.guard.figures([CLIENT])[CLIENT].counts["complaint"] == 1


@pytest.mark.parametrize(
    ("kind", "detail", "suppressed"),
    [
        ("Bounce", documented.bounce([A], dsn=False, subtype=LISTED), "bounced"),
        ("Complaint", documented.complaint([A], feedback=None, subtype=LISTED), "complained"),
    ],
)
def test_an_address_on_the_ses_accounts_list_is_a_drop_the_guard_does_not_count(
    rt: Runtime, kind: str, detail: dict[str, Any], suppressed: str
) -> None:
    # SES did not try it: no bounce or complaint of this mail's (the account's list is every
    # client's, so it may be another client's complainer), and "This does not count toward
    # your bounce rate metric" (SES). The mail is undelivered; the address stays suppressed.
    ref = mail(rt, "n1", [A])
    assert ses(rt, kind, ref, [A], detail) == "moved"
    found = record(rt, "n1")
    assert found.status == "undelivered" and "complaint" not in found.public()
    assert found.error == f"dropped: on the SES account's suppression list, as {suppressed}"
    assert reason(rt, A) == suppressed
    assert rt.guard.figures([CLIENT])[CLIENT].counts == {"bounce": 0, "complaint": 0}
    assert callbacks(rt) == [("n1", "sent"), ("n1", "undelivered")]


def test_a_not_spam_report_is_no_complaint(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A])
    assert (
        ses(rt, "Complaint", ref, [A], documented.complaint([A], feedback="not-spam")) == "ignored"
    )
    assert "complaint" not in record(rt, "n1").public() and reason(rt, A) is None


def test_a_bounce_from_behind_a_forward_is_the_recipient_we_sent_to(rt: Runtime) -> None:
    # A bounce's emailAddress is the DSN's Final-Recipient (SES): the address the mail was
    # forwarded to, never ours. The mail went to one address: that one bounced.
    ref = mail(rt, "n1", [A])
    assert ses(rt, "Bounce", ref, [A], documented.bounce(["old@forward.example"])) == "moved"
    assert record(rt, "n1").status == "undelivered"
    assert (reason(rt, A), reason(rt, "old@forward.example")) == ("bounced", None)
    # To several, which one bounced cannot be told: nothing is suppressed or counted.
    ref = mail(rt, "n2", [B, C])
    assert ses(rt, "Bounce", ref, [B, C], documented.bounce(["old@forward.example"])) == "ignored"
    assert record(rt, "n2").status == "sent" and reason(rt, "old@forward.example") is None


def test_a_reject_refuses_the_whole_mail_and_suppresses_nobody(rt: Runtime) -> None:
    ref = mail(rt, "n1", [A, B])
    assert ses(rt, "Reject", ref, [A, B], documented.REJECT) == "moved"
    found = record(rt, "n1")
    assert (found.status, found.error) == ("undelivered", "refused by ses: Bad content")
    assert reason(rt, A) is reason(rt, B) is None
    assert ses(rt, "Send", ref, [A, B], documented.SEND) == "ignored"


def test_an_event_before_its_send_is_recorded_is_kept_and_applied(rt: Runtime) -> None:
    payload = {**PAYLOAD, "client": CLIENT, "to": [A, B], "cc": [], "bcc": []}
    rt.store.create(notification_id="n1", client=CLIENT, kind="mail", payload=payload)
    ref = "<n1@ses>"
    bounce = documented.event(
        "Bounce", ref, [A, B], documented.bounce([A, B]), notification_id="n1"
    )
    complaint = documented.event(
        "Complaint", ref, [A, B], documented.complaint([A]), notification_id="n1"
    )
    assert rt.mail_events.apply(ses_events_of(bounce)) == "early"
    assert rt.mail_events.apply(ses_events_of(complaint)) == "early"
    assert reason(rt, A) is None
    # Kept by the recipients' tokens, the provider's words masked: no address in Redis.
    kept = rt.redis.get(f"notifier:receipt:ses:{ref}")
    assert isinstance(kept, str) and kept.count("\n") == 3 and A not in kept and B not in kept
    assert rt.mail_events.token(A) in kept and rt.mail_events.token(B) in kept
    deliver_mail(delivery(rt, mail=MemoryMailProvider(name="ses")), "n1")
    found = record(rt, "n1")
    assert found.status == "undelivered" and found.complaint is not None
    assert (reason(rt, A), reason(rt, B)) == ("bounced", "bounced")  # a bounce stops more
    assert rt.redis.exists(f"notifier:receipt:ses:{ref}") == 0
    # A message unknown here is answered all the same, and kept an hour in case it comes,
    # unless its tags say it is not ours (another application's on a shared identity).
    unknown = documented.event("Delivery", "<later@ses>", [A], documented.delivery([A]),
                               notification_id="n9")  # fmt: skip
    assert rt.mail_events.apply(ses_events_of(unknown)) == "early"
    assert ses(rt, "Delivery", "<elsewhere@ses>", [A], documented.delivery([A])) == "ignored"
    assert rt.redis.exists("notifier:receipt:ses:<elsewhere@ses>") == 0
    bare = documented.event("Delivery", "<bare@ses>", [A], documented.delivery([A]),
                            form="notificationType")  # fmt: skip
    assert rt.mail_events.apply(ses_events_of(bare)) == "early"  # no tags to tell by


def test_sendgrid_drops_and_spam_reports(rt: Runtime) -> None:
    mail(rt, "n1", [A, B, C], provider="sendgrid")
    stored = record(rt, "n1").provider_ref
    assert stored is not None

    def item(event: str, email: str, **more: Any) -> dict[str, Any]:
        return {"email": email, "event": event, "timestamp": 1700000000,
                "sg_message_id": f"{stored}.filterdrecv-1.0", **more}  # fmt: skip

    # An invalid address and one of SendGrid's spam reporters are suppressed; a drop for the
    # content is not the address's doing.
    events = sendgrid_events([
        item("dropped", A, reason="Invalid"), item("dropped", B, reason="Spam Content"),
        item("spamreport", C),
    ])  # fmt: skip
    assert rt.mail_events.apply(events) == "noted"
    assert record(rt, "n1").status == "sent"
    assert (reason(rt, A), reason(rt, B), reason(rt, C)) == ("bounced", None, "complained")
    # The last recipient dropped too: none is left to deliver it to.
    last = sendgrid_events([item("dropped", C, reason="Spam Reporting Address")])
    assert rt.mail_events.apply(last) == "moved"
    found = record(rt, "n1")
    assert (found.status, found.error) == ("undelivered", "dropped: Spam Reporting Address")
    # Drops are no bounces: the guard counted none.
    assert rt.guard.figures([CLIENT])[CLIENT].counts == {"bounce": 0, "complaint": 1}
    # A message unknown here: kept an hour when it carries our custom argument (its send may
    # not be recorded yet), not at all when it does not (another application's, on our key).
    later = {"email": A, "event": "delivered", "timestamp": 1700000000, "sg_message_id": "later.1"}
    assert rt.mail_events.apply(sendgrid_events([{**later, "notification_id": "n9"}])) == "early"
    theirs = {**later, "sg_message_id": "theirs.filterdrecv-1.0"}
    assert rt.mail_events.apply(sendgrid_events([theirs])) == "ignored"
    assert rt.redis.exists("notifier:receipt:sendgrid:theirs") == 0


def test_the_guard_warns_then_pauses_a_client_whose_bounces_cross_the_rates(
    rt: Runtime, caplog: pytest.LogCaptureFixture
) -> None:
    refs = [mail(rt, f"n{i}", [f"u{i}@example.com"]) for i in range(20)]

    def bounce(i: int) -> None:
        to = [f"u{i}@example.com"]
        assert ses(rt, "Bounce", refs[i], to, documented.bounce(to)) == "moved"

    bounce(0)  # 1 of 20: 5%, a warning
    assert rt.guard.paused(CLIENT) is None
    assert "client hooked: its bounce rate is 5.0% (1 of 20 mails over 24 h)" in caplog.text
    bounce(1)  # 2 of 20: 10%, paused
    pause = rt.guard.paused(CLIENT)
    assert pause is not None and (pause.kind, pause.count, pause.volume) == ("bounce", 2, 20)
    assert "client hooked: mail paused, its bounce rate is 10.0%" in caplog.text
    assert rt.guard.paused("tester") is None
    assert rt.guard.resume(CLIENT, only_paused=True) == pause
    assert rt.guard.paused(CLIENT) is None
    assert rt.guard.figures([CLIENT])[CLIENT].volume == 0  # the window starts again
    bounce(2)  # a mail sent before the resume: the old window's, not counted
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 0
    refs.append(mail(rt, "n20", ["u20@example.com"]))  # one sent after it
    bounce(20)  # counted in the new window
    assert rt.guard.resume(CLIENT, only_paused=True) is None  # (a second operator's resume)
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 1  # its window kept
    assert rt.guard.resume(CLIENT) is None  # the CLI's: the window starts again regardless
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 0


def test_a_batch_row_queued_before_a_resume_and_sent_after_it_counts_in_the_new_window(
    rt: Runtime,
) -> None:
    """The window counts a mail when a provider takes it: a row accepted before the pause and
    sent after the resume is the new window's, volume and bounce alike."""
    payload = {**PAYLOAD, "client": CLIENT, "to": ["late@example.com"], "cc": [], "bcc": []}
    rt.store.create(notification_id="row", client=CLIENT, kind="mail", payload=payload)
    rt.guard.resume(CLIENT)  # the row waits in its lane meanwhile
    assert deliver_mail(delivery(rt, mail=MemoryMailProvider(name="ses")), "row").status == "sent"
    to = ["late@example.com"]
    assert ses(rt, "Bounce", "<row@ses>", to, documented.bounce(to)) == "moved"
    assert rt.guard.figures([CLIENT])[CLIENT].counts["bounce"] == 1


def test_kept_events_that_cannot_be_applied_leave_the_send_recorded(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    payload = {**PAYLOAD, "client": CLIENT, "to": [A], "cc": [], "bcc": []}
    rt.store.create(notification_id="n1", client=CLIENT, kind="mail", payload=payload)
    bounce = documented.event(
        "Bounce", "<n1@ses>", [A], documented.bounce([A]), notification_id="n1"
    )
    assert rt.mail_events.apply(ses_events_of(bounce)) == "early"

    class Broken:
        def apply_kept(self, *_: object) -> None:
            raise RuntimeError("Redis went away")

    monkeypatch.setattr(rt, "mail_events", Broken())
    outcome = deliver_mail(delivery(rt, mail=MemoryMailProvider(name="ses")), "n1")
    assert outcome.status == "sent" and record(rt, "n1").status == "sent"
    assert "the ses events kept for message <n1@ses> were not applied" in caplog.text

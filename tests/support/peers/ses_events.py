"""SES's events as SES publishes them to Amazon SNS, for mails the local SES took, in both forms:
``notificationType`` (an identity's feedback notifications: Bounce, Complaint, Delivery only)
and ``eventType`` (a configuration set's event destination: those, and Send, Reject,
DeliveryDelay, Open...).

Each builder writes the shape of AWS's documented examples, field for field, with this test's
values: "Amazon SNS notification examples for Amazon SES" (``notificationType``: a bounce with
and without a DSN, a complaint with and without a feedback report, a delivery) and "Examples of
event data that Amazon SES publishes to Amazon SNS" (``eventType``: Bounce, Complaint, Delivery,
Send, Reject, Open, DeliveryDelay records). The ``mail`` object has the original headers (as an
identity set to include them sends), and in the ``eventType`` form the message's tags, ours
(``notification_id``) with SES's own.

:func:`signed` wraps one in an SNS notification signed as :mod:`tests.support.peers.sns` signs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import rsa

from tests.support.peers import ses, sns

Form = Literal["notificationType", "eventType"]
AT = "2026-12-03T10:00:00.000Z"
LATER = "2026-12-03T10:00:04.512Z"
SENDER = "noreply@example.com"
ACCOUNT = "123456789012"


def _mail(
    message_id: str, destination: Sequence[str], form: Form, notification_id: str | None
) -> dict[str, Any]:
    """The ``mail`` object of every SES event: the message as it was sent."""
    mail: dict[str, Any] = {
        "timestamp": AT,
        "source": SENDER,
        "sourceArn": f"arn:aws:ses:{ses.REGION}:{ACCOUNT}:identity/example.com",
        "sourceIp": "192.0.2.10",
        "sendingAccountId": ACCOUNT,
        "messageId": message_id,
        "destination": list(destination),
        "headersTruncated": False,
        "headers": [
            {"name": "From", "value": f"Notifier <{SENDER}>"},
            {"name": "To", "value": ", ".join(destination)},
            {"name": "Subject", "value": "Hello"},
            {"name": "MIME-Version", "value": "1.0"},
            {"name": "Content-Type", "value": 'multipart/alternative; boundary="b1"'},
        ],
        "commonHeaders": {
            "from": [f"Notifier <{SENDER}>"],
            "to": list(destination),
            "messageId": message_id,
            "subject": "Hello",
        },
    }
    if form == "eventType":
        tags = {
            "ses:configuration-set": [ses.CONFIGURATION_SET],
            "ses:source-ip": ["192.0.2.10"],
            "ses:from-domain": ["example.com"],
            "ses:caller-identity": ["notifier"],
        }
        if notification_id is not None:
            tags["notification_id"] = [notification_id]
        mail["tags"] = tags
    return mail


def event(
    kind: str,
    message_id: str,
    destination: Sequence[str],
    detail: dict[str, Any],
    *,
    form: Form = "eventType",
    notification_id: str | None = None,
) -> dict[str, Any]:
    """An SES event of ``kind`` (Bounce, Complaint, Delivery, Send, Reject, DeliveryDelay, Open)
    about the mail ``message_id`` to ``destination``, its own object ``detail``."""
    field = {"DeliveryDelay": "deliveryDelay"}.get(kind, kind.lower())
    return {
        form: kind,
        "mail": _mail(message_id, destination, form, notification_id),
        field: detail,
    }


def bounce(
    recipients: Sequence[str],
    *,
    permanent: bool = True,
    dsn: bool = True,
    subtype: str | None = None,
) -> dict[str, Any]:
    """A ``bounce`` object: ``bouncedRecipients`` with their DSN fields (``dsn``), or bare; its
    ``bounceSubType`` (General or MailboxFull) may be given: ``OnAccountSuppressionList``, an
    address SES did not try, comes bare (SES's "Amazon SNS notification contents")."""
    bounced = [
        {
            "emailAddress": r,
            "action": "failed",
            "status": "5.1.1" if permanent else "4.2.2",
            "diagnosticCode": f"smtp; 550 5.1.1 <{r}>... User unknown"
            if permanent
            else "smtp; 452 4.2.2 Mailbox full",
        }
        if dsn
        else {"emailAddress": r}
        for r in recipients
    ]
    return {
        "bounceType": "Permanent" if permanent else "Transient",
        "bounceSubType": subtype or ("General" if permanent else "MailboxFull"),
        "bouncedRecipients": bounced,
        "timestamp": LATER,
        "feedbackId": f"0102{uuid.uuid4().hex[:12]}-feedback-000000",
        "reportingMTA": "dsn; mta.example.net",
        "remoteMtaIp": "192.0.2.20",
    }


def complaint(
    recipients: Sequence[str], *, feedback: str | None = "abuse", subtype: str | None = None
) -> dict[str, Any]:
    """A ``complaint`` object, with a feedback report (its type) or without one; its
    ``complaintSubType`` null, or ``OnAccountSuppressionList`` (SES did not try the address)."""
    found: dict[str, Any] = {
        "complainedRecipients": [{"emailAddress": r} for r in recipients],
        "timestamp": LATER,
        "feedbackId": f"0102{uuid.uuid4().hex[:12]}-feedback-000000",
        "complaintSubType": subtype,
    }
    if feedback is not None:
        found.update({
            "userAgent": "ExampleMail Feedback Loop (V0.01)",
            "complaintFeedbackType": feedback,
            "arrivalDate": LATER,
        })  # fmt: skip
    return found


def delivery(recipients: Sequence[str]) -> dict[str, Any]:
    """A ``delivery`` object: the recipients the receiving server took."""
    return {
        "timestamp": LATER,
        "processingTimeMillis": 4512,
        "recipients": list(recipients),
        "smtpResponse": "250 2.6.0 Message received",
        "reportingMTA": "a8-70.smtp-out.amazonses.com",
        "remoteMtaIp": "192.0.2.20",
    }


def delay(recipients: Sequence[str]) -> dict[str, Any]:
    """A ``deliveryDelay`` object: the recipients whose servers answer, for now, later."""
    return {
        "timestamp": LATER,
        "delayType": "TransientCommunicationFailure",
        "expirationTime": "2026-12-04T10:00:00.000Z",
        "delayedRecipients": [
            {"emailAddress": r, "status": "4.4.1",
             "diagnosticCode": "smtp; 421 4.4.1 Unable to connect to remote host"}
            for r in recipients
        ],
    }  # fmt: skip


REJECT = {"reason": "Bad content"}
SEND: dict[str, Any] = {}
OPEN = {"ipAddress": "192.0.2.1", "timestamp": LATER, "userAgent": "Mozilla/5.0"}


def for_mail(
    sent: ses.Sent, kind: str, detail: dict[str, Any], form: Form = "eventType"
) -> dict[str, Any]:
    """An event of a mail the local SES took (its id, its recipients, our tag)."""
    return event(
        kind, sent.message_id, sent.recipients, detail, form=form,
        notification_id=sent.tags.get("notification_id"),
    )  # fmt: skip


def signed(
    message: dict[str, Any],
    key: rsa.RSAPrivateKey,
    *,
    topic: str = sns.TOPIC,
    version: str = "2",
) -> bytes:
    """``message`` as the body SNS posts: a Notification of ``topic``, signed by ``key``."""
    fields = sns.notification(json.dumps(message), topic=topic)
    fields["MessageId"] = str(uuid.uuid4())
    return json.dumps(sns.sign(fields, key, version)).encode()

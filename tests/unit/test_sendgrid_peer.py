"""The local SendGrid of the tests (``tests/support/peers/sendgrid.py``) against the official
``sendgrid`` package (none of Notifier's code): the body its ``Mail`` helper builds, sent by its
own client, is taken; a wrong key and each fault SendGrid documents are refused, so a body that
passes it is one SendGrid would take."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import Bcc, Cc, CustomArg, From, Header, Mail, ReplyTo, To

from tests.support.peers import sendgrid


@pytest.fixture(scope="module")
def fake() -> Iterator[sendgrid.FakeSendGrid]:
    server = sendgrid.FakeSendGrid().start()
    yield server
    server.stop()


def helper_mail(to: str = "ada@example.com") -> Mail:
    """A mail as the official helper builds it, with every part Notifier sends."""
    mail = Mail(
        from_email=From("noreply@example.com", "Acme"),
        to_emails=To(to),
        subject="Your receipt",
        plain_text_content="Plain body",
        html_content="<p>Rich body</p>",
    )
    mail.add_cc(Cc("cc@example.com"))
    mail.add_bcc(Bcc("audit@example.com"))
    mail.reply_to = ReplyTo("help@example.com", "Help")
    mail.header = Header("List-Unsubscribe", "<https://n.example/v1/unsubscribe/t>")
    mail.header = Header("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")
    mail.custom_arg = CustomArg("notification_id", "n1")
    return mail


def test_the_official_clients_mail_is_taken(fake: sendgrid.FakeSendGrid) -> None:
    client = SendGridAPIClient(api_key=sendgrid.API_KEY, host=fake.base_url)
    answer = client.send(helper_mail())
    assert answer.status_code == 202
    (sent,) = [s for s in fake.sent if s.message_id == answer.headers["X-Message-Id"]]
    assert sent.body == helper_mail().get()
    assert sent.recipients == ["ada@example.com", "cc@example.com", "audit@example.com"]


def test_a_wrong_key_is_refused(fake: sendgrid.FakeSendGrid) -> None:
    client = SendGridAPIClient(api_key="SG.wrong", host=fake.base_url)
    with pytest.raises(HTTPError) as caught:
        client.send(helper_mail())
    assert caught.value.status_code == 401


def post(fake: sendgrid.FakeSendGrid, body: Any) -> requests.Response:
    return requests.post(
        fake.base_url + "/v3/mail/send",
        json=body,
        headers={"Authorization": f"Bearer {sendgrid.API_KEY}"},
        timeout=10,
    )


def changed(path: str, value: Any, *, delete: bool = False) -> dict[str, Any]:
    """The helper's body with the member at ``path`` (dots, list indexes) set or deleted."""
    body: dict[str, Any] = copy.deepcopy(helper_mail().get())
    *parents, last = path.split(".")
    at: Any = body
    for part in parents:
        at = at[int(part)] if isinstance(at, list) else at[part]
    key: Any = int(last) if isinstance(at, list) else last
    if delete:
        del at[key]
    else:
        at[key] = value
    return body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (changed("personalizations", []), "personalizations"),
        (changed("personalizations.0.to", None, delete=True), "personalizations.0.to"),
        (changed("personalizations.0.bcc.0.email", "ADA@example.com"), "personalizations.0"),
        (changed("personalizations.0.cc.0.email", "not-an-address"),
         "personalizations.0.cc.0.email"),
        (changed("from", None, delete=True), "from"),
        (changed("subject", None, delete=True), "subject"),
        (changed("content", [{"type": "text/html", "value": "<p>x</p>"},
                             {"type": "text/plain", "value": "x"}]), "content"),
        (changed("content.0.value", ""), "content.0.value"),
        (changed("custom_args.notification_id", 1), "custom_args"),
        (changed("headers.Subject", "Another"), "headers"),
        (changed("personalisations", []), "personalisations"),
    ],
    ids=["no personalization", "no to", "an address twice", "a bad address", "no from",
         "no subject", "html before text", "an empty content", "a number in custom_args",
         "a reserved header", "an unknown member"],
)  # fmt: skip
def test_each_documented_fault_is_refused(
    fake: sendgrid.FakeSendGrid, body: dict[str, Any], field: str
) -> None:
    answer = post(fake, body)
    assert answer.status_code == 400, answer.text
    (error,) = answer.json()["errors"]
    assert error["field"] == field


def test_an_unverified_sender_is_forbidden_and_plans_come_first(
    fake: sendgrid.FakeSendGrid,
) -> None:
    answer = post(fake, changed("from.email", "noreply@example.org"))
    assert answer.status_code == 403 and answer.json()["errors"][0]["field"] == "from"
    fake.plan("busy@example.com", sendgrid.THROTTLED)
    body = helper_mail("busy@example.com").get()
    assert [post(fake, body).status_code for _ in range(2)] == [429, 202]

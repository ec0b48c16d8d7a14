"""POST /v1/receipts/ses and /v1/receipts/sendgrid through the Flask app, with the production
SNS verifier (the SNS hosts resolve to a local HTTPS server, its CA the trust store), and the
bounce-rate guard on the mail routes."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

import pytest
import urllib3.util.connection
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient

from config import Settings
from notifier import create_app
from notifier.cli import main
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.services.mail import deliver_mail
from tests.support.delivery import delivery
from tests.support.harness.api import MAIL, assert_problem, post
from tests.support.harness.clients import auth
from tests.support.harness.console import pause_mail
from tests.support.harness.mail import PAYLOAD
from tests.support.loopback.sns_loopback import resolving
from tests.support.peers import sendgrid_events as sg
from tests.support.peers import ses_events as documented
from tests.support.peers import sns
from tests.support.peers.sendgrid import Sent
from tests.support.peers.sns import Pki, SnsPeer

A, B, C = "ada@example.com", "bob@example.com", "cy@example.com"
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:attackers-own"


@pytest.fixture
def reached(peer: SnsPeer, monkeypatch: pytest.MonkeyPatch) -> SnsPeer:
    """The local SNS server (tests/unit/conftest.py), reached for the SNS hosts by the service's
    own verifier: its connections to them go to the server, as curl --resolve would."""
    real = urllib3.util.connection.create_connection
    monkeypatch.setattr(urllib3.util.connection, "create_connection", resolving(peer.port, real))
    return peer


@pytest.fixture(scope="module")
def signer() -> sg.Signer:
    return sg.Signer()


@pytest.fixture
def app(make_settings: Callable[..., Settings], reached: SnsPeer, signer: sg.Signer) -> Flask:
    """The app with SES's topic, SendGrid's key and a guard at 10 mails."""
    return create_app(
        make_settings(
            ses_topic_arns=sns.TOPIC,
            sendgrid_webhook_public_key=signer.public_key,
            bounce_guard_min_volume=10,
        )
    )


@pytest.fixture
def rt(app: Flask) -> Runtime:
    found: Runtime = app.extensions["notifier"]
    return found


def mail(
    rt: Runtime, n: str, to: Sequence[str], provider: str = "ses", client: str = "tester"
) -> str:
    """A mail to ``to`` sent by ``provider``: its provider_ref."""
    payload = {**PAYLOAD, "client": client, "to": list(to), "cc": [], "bcc": []}
    rt.store.create(notification_id=n, client=client, kind="mail", payload=payload)
    deliver_mail(delivery(rt, mail=MemoryMailProvider(name=provider)), n)
    found = rt.store.get(n)
    assert found is not None and found.provider_ref is not None
    return found.provider_ref


def status(rt: Runtime, n: str) -> str:
    found = rt.store.get(n)
    assert found is not None
    return found.status


def suppressed(rt: Runtime, address: str, client: str = "tester") -> str | None:
    entry = rt.suppressions.get(client, address)
    return None if entry is None else entry.reason


def post_sns(client: FlaskClient, body: bytes, **headers: str) -> Any:
    return client.post(
        "/v1/receipts/ses", data=body,
        headers={"Content-Type": "text/plain; charset=UTF-8", **headers},
    )  # fmt: skip


# -- SES, through SNS --------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
def test_a_signed_bounce_undelivers_and_suppresses(
    client: FlaskClient, rt: Runtime, pki: Pki, version: str
) -> None:
    ref = mail(rt, "n1", [A])
    message = documented.event("Bounce", ref, [A], documented.bounce([A]), form="notificationType")
    answer = post_sns(client, documented.signed(message, pki.signing_key, version=version))
    assert answer.status_code == 200 and answer.get_json() == {"outcome": "moved"}
    assert status(rt, "n1") == "undelivered" and suppressed(rt, A) == "bounced"


def test_a_changed_byte_another_topic_or_no_signature_is_403_and_changes_nothing(
    client: FlaskClient, rt: Runtime, pki: Pki, peer: SnsPeer
) -> None:
    ref = mail(rt, "n1", [A])
    message = documented.event("Bounce", ref, [A], documented.bounce([A]))
    good = documented.signed(message, pki.signing_key)
    changed = good.replace(b"Permanent", b"Permanenu")
    foreign = documented.signed(message, pki.signing_key, topic=OTHER_TOPIC)
    raw = json.dumps(message).encode()
    for body, headers in ((changed, {}), (foreign, {}), (raw, {}),
                          (good, {"x-amz-sns-rawdelivery": "true"})):  # fmt: skip
        problem = assert_problem(post_sns(client, body, **headers), 403)
        assert status(rt, "n1") == "sent" and suppressed(rt, A) is None, problem
    assert "raw message delivery" in assert_problem(post_sns(client, raw), 403)["detail"]
    # The attacker's topic was refused before anything went out for its certificate.
    assert len(peer.seen) <= 1


@pytest.mark.parametrize(
    "body", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000]
)
def test_a_body_nested_too_deeply_is_403_not_a_500(client: FlaskClient, body: bytes) -> None:
    # No key is needed to post here: a 500 and its logged traceback for anyone who asks.
    assert "not an SNS message" in assert_problem(post_sns(client, body), 403)["detail"]


def test_a_certificate_off_the_sns_hosts_is_403(client: FlaskClient, rt: Runtime, pki: Pki) -> None:
    ref = mail(rt, "n1", [A])
    message = documented.event("Bounce", ref, [A], documented.bounce([A]))
    for url in (sns.CERT_URL.replace("https", "http"), sns.CERT_URL.replace("amazonaws", "x")):
        fields = sns.notification(json.dumps(message), cert_url=url)
        assert_problem(
            post_sns(client, json.dumps(sns.sign(fields, pki.signing_key)).encode()), 403
        )
    assert status(rt, "n1") == "sent"


def test_a_subscription_of_our_topic_is_confirmed_and_no_other(
    client: FlaskClient, pki: Pki, peer: SnsPeer
) -> None:
    ours = json.dumps(sns.sign(sns.confirmation(), pki.signing_key)).encode()
    assert post_sns(client, ours).get_json() == {"outcome": "confirmed"}
    assert len(peer.confirmations()) == 1
    theirs = json.dumps(sns.sign(sns.confirmation(topic=OTHER_TOPIC), pki.signing_key)).encode()
    assert_problem(post_sns(client, theirs), 403)
    assert len(peer.confirmations()) == 1


def test_an_unsubscribe_confirmation_is_logged(
    client: FlaskClient, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    fields = sns.sign(sns.confirmation(kind="UnsubscribeConfirmation"), pki.signing_key)
    assert post_sns(client, json.dumps(fields).encode()).get_json() == {"outcome": "ignored"}
    assert f"the SNS subscription to {sns.TOPIC} was removed" in caplog.text


def test_an_unknown_message_or_another_message_is_200(client: FlaskClient, pki: Pki) -> None:
    unknown = documented.event(
        "Delivery", "0102-unknown", [A], documented.delivery([A]), notification_id="n9"
    )
    assert post_sns(client, documented.signed(unknown, pki.signing_key)).get_json() == {
        "outcome": "early"
    }
    theirs = documented.event("Delivery", "0102-theirs", [A], documented.delivery([A]))
    assert post_sns(client, documented.signed(theirs, pki.signing_key)).get_json() == {
        "outcome": "ignored"
    }
    hello = json.dumps(sns.sign(sns.notification("Hello world"), pki.signing_key)).encode()
    assert post_sns(client, hello).get_json() == {"outcome": "ignored"}


def test_without_topics_every_message_is_403(
    make_settings: Callable[..., Settings], pki: Pki
) -> None:
    client = create_app(make_settings()).test_client()
    body = json.dumps(sns.sign(sns.confirmation(), pki.signing_key)).encode()
    assert "NOTIFIER_SES_TOPIC_ARNS" in assert_problem(post_sns(client, body), 403)["detail"]


# -- SendGrid ----------------------------------------------------------------------------------


def sendgrid_sent(rt: Runtime, n: str, to: Sequence[str]) -> Sent:
    """A mail SendGrid took, as its peer would record it (for its events' ids)."""
    ref = mail(rt, n, to, provider="sendgrid")
    return Sent(ref, {"custom_args": {"notification_id": n}})


def post_sendgrid(client: FlaskClient, events: list[dict[str, Any]], signer: sg.Signer) -> Any:
    body = sg.body(events)
    return client.post("/v1/receipts/sendgrid", data=body, headers=signer.headers(body))


def test_a_signed_batch_of_events_moves_each_notification(
    client: FlaskClient, rt: Runtime, signer: sg.Signer
) -> None:
    one, two, three = (sendgrid_sent(rt, f"n{i}", [A, B]) for i in (1, 2, 3))
    events = [
        sg.delivered(one, A), sg.bounced(two, A), sg.bounced(two, B), sg.deferred(three, A),
        sg.bounced(three, B, blocked=True), sg.spamreport(one, B), sg.event("open", one, A),
    ]  # fmt: skip
    events[4]["timestamp"] += 1  # the block, a second after the deferral
    answer = post_sendgrid(client, events, signer)
    assert answer.status_code == 200 and answer.get_json() == {"outcome": "moved"}
    assert [status(rt, n) for n in ("n1", "n2", "n3")] == ["delivered", "undelivered", "sent"]
    assert (suppressed(rt, A), suppressed(rt, B)) == ("bounced", "bounced")  # bounced > complained
    found = rt.store.get("n3")
    assert found is not None and found.soft_bounce is not None
    assert found.soft_bounce.status == "4.0.0"  # the latest: the block
    complained = rt.store.get("n1")
    assert complained is not None and complained.complaint is not None
    assert post_sendgrid(client, events, signer).get_json() == {"outcome": "duplicate"}


@pytest.mark.parametrize("what", ["another key", "a changed byte", "no signature"])
def test_a_post_not_signed_with_our_key_is_403_and_changes_nothing(
    client: FlaskClient, rt: Runtime, signer: sg.Signer, what: str
) -> None:
    sent = sendgrid_sent(rt, "n1", [A])
    body = sg.body([sg.bounced(sent, A)])
    headers = (sg.Signer() if what == "another key" else signer).headers(body)
    if what == "a changed byte":
        body = body.replace(b"5.1.1", b"5.1.2")
    if what == "no signature":
        del headers["X-Twilio-Email-Event-Webhook-Signature"]
    answer = client.post("/v1/receipts/sendgrid", data=body, headers=headers)
    assert_problem(answer, 403)
    assert status(rt, "n1") == "sent" and suppressed(rt, A) is None


def test_a_signed_body_not_an_array_of_events_is_400(
    client: FlaskClient, signer: sg.Signer
) -> None:
    body = b'{"event": "delivered"}'
    answer = client.post("/v1/receipts/sendgrid", data=body, headers=signer.headers(body))
    assert assert_problem(answer, 400)["detail"] == "the body must be a JSON array"


def test_without_a_key_or_past_the_size_limit_every_post_is_403(
    make_settings: Callable[..., Settings], client: FlaskClient, signer: sg.Signer
) -> None:
    unset = create_app(make_settings()).test_client()
    body = sg.body([])
    detail = assert_problem(
        unset.post("/v1/receipts/sendgrid", data=body, headers=signer.headers(body)), 403
    )["detail"]
    assert "NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY" in detail
    large = b"[" + b" " * (1024 * 1024) + b"]"
    answer = client.post("/v1/receipts/sendgrid", data=large, headers=signer.headers(large))
    assert "too large" in assert_problem(answer, 403)["detail"]


# -- the guard on the mail routes --------------------------------------------------------------


def test_a_paused_clients_mail_is_403_until_resumed(
    client: FlaskClient, rt: Runtime, pki: Pki, app: Flask, monkeypatch: pytest.MonkeyPatch
) -> None:
    refs = [mail(rt, f"n{i}", [f"u{i}@example.com"]) for i in range(10)]
    bounce = documented.event("Bounce", refs[0], ["u0@example.com"],
                              documented.bounce(["u0@example.com"]))  # fmt: skip
    assert post_sns(client, documented.signed(bounce, pki.signing_key)).status_code == 200
    # 1 of 10 mails bounced for good: 10%, paused.
    detail = assert_problem(post(client, MAIL), 403)["detail"]
    assert "its bounce rate over 24 h reached 10.0% (1 of 10 mails)" in detail
    assert "notifier clients resume tester" in detail
    batch = {"template": "welcome", "recipients": [{"to": A, "data": {"name": "Ada"}}]}
    assert_problem(client.post("/v1/mail/batch", json=batch, headers=auth()), 403)
    # A code by mail, and another client's mail, still go.
    code = client.post("/v1/mail/captcha", json={"to": A, "purpose": "login"}, headers=auth())
    assert code.status_code == 202
    assert post(client, MAIL, who="mailer").status_code == 202
    # The operator resumes it.
    for name, value in rt.settings.model_dump(mode="json").items():
        if name in ("redis_url", "env"):
            monkeypatch.setenv(f"NOTIFIER_{name.upper()}", str(value))
    resumed = CliRunner().invoke(main, ["clients", "resume", "tester"])
    assert resumed.exit_code == 0, resumed.output
    assert "tester: mail resumed" in resumed.output and "bounce rate 10.0%" in resumed.output
    assert post(client, MAIL).status_code == 202
    metrics = client.get("/metrics").get_data(as_text=True)
    assert 'notifier_mail_guard_paused{client="tester"} 0.0' in metrics
    assert 'notifier_mail_guard_volume{client="tester"} 0.0' in metrics
    # A bounce of a mail accepted before the resume arrives late: the old window's, not counted
    # (else a batch's bounces trickling in for hours paused the client again at once).
    late = documented.event("Bounce", refs[1], ["u1@example.com"],
                            documented.bounce(["u1@example.com"]))  # fmt: skip
    assert post_sns(client, documented.signed(late, pki.signing_key)).status_code == 200
    record = rt.store.get("n1")
    assert record is not None and record.status == "undelivered"  # the record moves all the same
    assert rt.guard.figures(["tester"])["tester"].counts["bounce"] == 0
    # One accepted after it counts.
    after = mail(rt, "n-after", ["late@example.com"])
    bounced = documented.event("Bounce", after, ["late@example.com"],
                               documented.bounce(["late@example.com"]))  # fmt: skip
    assert post_sns(client, documented.signed(bounced, pki.signing_key)).status_code == 200
    assert rt.guard.figures(["tester"])["tester"].counts["bounce"] == 1


def test_a_paused_clients_refused_mail_spends_none_of_its_rate(
    make_settings: Callable[..., Settings],
) -> None:
    """Its codes share the client's rate: 403s for its mail must not leave them 429."""
    app = create_app(make_settings(rate_limit="3/m"))
    client = app.test_client()
    pause_mail(app.extensions["notifier"].redis, "tester")
    for _ in range(5):
        assert_problem(client.post("/v1/mail", json=MAIL, headers=auth()), 403)
    code = client.post("/v1/sms/captcha", json={"phone": "+8613800138000", "purpose": "login"},
                       headers=auth())  # fmt: skip
    assert code.status_code == 202, code.get_json()


def test_a_mail_accepted_before_the_pause_is_replayed_by_its_key_after_it(
    client: FlaskClient, rt: Runtime, pki: Pki
) -> None:
    """The mail is kept and will be sent (docs/deliverability.md): a retry of its request
    answers the first 202 again, not a 403 that says it was not taken."""
    headers = {**auth(), "Idempotency-Key": "order-1"}
    first = client.post("/v1/mail", json=MAIL, headers=headers)
    assert first.status_code == 202, first.get_json()
    refs = [mail(rt, f"n{i}", [f"u{i}@example.com"]) for i in range(10)]
    bounce = documented.event("Bounce", refs[0], ["u0@example.com"],
                              documented.bounce(["u0@example.com"]))  # fmt: skip
    assert post_sns(client, documented.signed(bounce, pki.signing_key)).status_code == 200
    again = client.post("/v1/mail", json=MAIL, headers=headers)
    assert again.status_code == 202, again.get_json()
    assert again.get_json()["id"] == first.get_json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    # A new request with a new key is refused, and its key stays free for after the resume.
    fresh = {**auth(), "Idempotency-Key": "order-2"}
    assert_problem(client.post("/v1/mail", json=MAIL, headers=fresh), 403)
    assert rt.guard.resume("tester") is not None
    assert client.post("/v1/mail", json=MAIL, headers=fresh).status_code == 202

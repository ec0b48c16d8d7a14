"""What services/sms.py decides: which provider can carry an SMS, what a worker is given and
does with it (in-memory providers, a real Redis), and which named SMS stop the start-up."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from config import Settings
from notifier import create_app
from notifier.errors import PermanentProviderError, Refused, TransientProviderError
from notifier.providers.base import SmsProvider
from notifier.providers.memory import MemorySmsProvider, MemoryTemplateProvider
from notifier.providers.signed_http import RecipientThrottled
from notifier.runtime import Runtime
from notifier.services.batches import fan_out
from notifier.services.sms import OutgoingSms, check_templates, deliver_sms, refuse_uncarried
from notifier.settings import ConfigError
from notifier.stores.batches.keys import content_key
from notifier.templating import Approved, NamedSms, folders
from tests.support.delivery import delivery
from tests.support.harness.clients import api_clients, auth
from tests.support.harness.sms import DATA, cn_providers, templates_dir
from tests.support.peers import aliyun, tencent

NAMED = MemoryTemplateProvider("aliyun", "named")
ORDERED = MemoryTemplateProvider("tencent", "ordered")
TEXT = MemorySmsProvider(name="twilio")


def test_a_provider_carries_its_approved_template_in_its_style_or_else_the_text() -> None:
    both = OutgoingSms(
        "+8613800138000",
        "Hi",
        {"aliyun": Approved("SMS_1", {"a": "1"}), "tencent": Approved("2", ["1"])},
    )
    assert [both.carried_by(p) for p in (NAMED, ORDERED, TEXT)] == [True, True, True]
    # Tencent's table in Aliyun's style (a start-up check stops this; see below), and no text.
    odd = OutgoingSms("+8613800138000", None, {"tencent": Approved("2", {"a": "1"})})
    assert [odd.carried_by(p) for p in (NAMED, ORDERED, TEXT)] == [False, False, False]


def test_the_payload_reads_back_as_the_sms_it_was() -> None:
    sms = OutgoingSms(
        "+8613800138000", "Acme: 1234", {"aliyun": Approved("SMS_1", {"order": "1234"})},
        {"twilio": "Acme"}, "shipped",
    )  # fmt: skip
    payload = sms.payload("shop")
    assert payload["client"] == "shop"
    assert OutgoingSms.read(payload) == sms
    assert (sms.sender_for("twilio"), sms.sender_for("aliyun")) == ("Acme", None)
    assert (sms.segments, sms.record) == (1, {"segments": "1"})
    assert OutgoingSms("+8613800138000", None).record == {}


def test_what_no_provider_carries_is_refused_naming_text_or_template() -> None:
    with pytest.raises(Refused) as text:
        refuse_uncarried(OutgoingSms("+8613800138000", "Hi"), [NAMED, ORDERED])
    assert text.value.faults[0].field == ("text",)
    assert "aliyun, tencent" in text.value.faults[0].message
    named = OutgoingSms("+8613800138000", "Hi", template="shipped")
    with pytest.raises(Refused) as template:
        refuse_uncarried(named, [NAMED])
    assert template.value.faults[0].field == ("template",)
    refuse_uncarried(named, [NAMED, TEXT])  # the text goes through Twilio


def named_sms(tmp_path: Path, text: str) -> NamedSms:
    (tmp_path / "sms").mkdir(parents=True)
    (tmp_path / "sms" / "odd.toml").write_text(text)
    return NamedSms(folders("sms", tmp_path))


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        (
            '[aliyun]\nid = "S"\nparams = ["{{ a }}"]\n',
            "aliyun takes named parameters: params is a table",
        ),
        (
            '[tencent]\nid = "1"\nparams = { a = "{{ a }}" }\n',
            "tencent takes ordered parameters: params is an array",
        ),
        ('[twilio]\nid = "1"\n', "twilio sends text; give the template a text"),
    ],
)
def test_a_named_sms_a_listed_provider_cannot_send_stops_the_start_up(
    tmp_path: Path, text: str, problem: str
) -> None:
    providers: list[SmsProvider] = [NAMED, ORDERED, TEXT]
    with pytest.raises(ConfigError) as caught:
        check_templates(named_sms(tmp_path, text), providers)
    table = text[: text.index("]") + 1]
    assert str(caught.value) == f"NOTIFIER_TEMPLATES_DIR: sms/odd.toml: {table}: {problem}"
    # A table for a provider this deployment does not list is left alone.
    check_templates(named_sms(tmp_path / "other", text), [])


def test_the_runtime_checks_the_named_sms_against_its_providers(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    folder = templates_dir(tmp_path)
    create_app(make_settings(**cn_providers(), templates_dir=folder))  # the fakes' own: fine
    (folder / "sms" / "shipped.toml").write_text('text = "x"\n[tencent]\nid = "1"\nparams = {}\n')
    with pytest.raises(ConfigError, match=r"sms/shipped.toml: \[tencent\]: tencent takes ordered"):
        create_app(make_settings(**cn_providers(), templates_dir=folder))


# Delivery: what a worker does with an SMS the door accepted.

CN = "+8613800138000"


def accepted(app: Flask, body: dict[str, Any], key: str = "") -> str:
    """POST an SMS (as the tester, or as the client of ``key``); its notification's id."""
    headers = {"Authorization": f"Bearer {key}"} if key else auth()
    response = app.test_client().post("/v1/sms", json=body, headers=headers)
    assert response.status_code == 202, response.get_data(as_text=True)
    found: str = response.get_json()["id"]
    return found


@pytest.fixture
def cn_app(make_settings: Callable[..., Settings], tmp_path: Path) -> Flask:
    """+86 served by Aliyun then Tencent; the operator's named SMS have their templates."""
    return create_app(
        make_settings(**cn_providers(), templates_dir=templates_dir(tmp_path / "templates"))
    )


def record(rt: Runtime, notification_id: str) -> tuple[str, str | None, str | None]:
    found = rt.store.get(notification_id)
    assert found is not None
    return found.status, found.provider, found.error


def test_a_text_goes_to_the_first_provider_from_the_clients_own_sender(
    make_settings: Callable[..., Settings],
) -> None:
    shop = {
        "client": "shop", "key_sha256": hashlib.sha256(b"ntf_shop").hexdigest(),
        "scopes": ["sms"], "sms_sender": {"console": "Acme"},
    }  # fmt: skip
    app = create_app(make_settings(api_keys=[*api_clients(), shop]))
    rt: Runtime = app.extensions["notifier"]
    own = accepted(app, {"to": CN, "text": "Parcel"}, "ntf_shop")
    settings = accepted(app, {"to": CN, "text": "Parcel"})
    provider = MemorySmsProvider(name="console")
    for notification_id in (own, settings):
        assert deliver_sms(delivery(rt, sms=[provider]), notification_id).status == "sent"
    assert provider.sent == [(CN, "Parcel")] * 2
    assert provider.senders == ["Acme", None]
    assert record(rt, own) == ("sent", "console", None)


def test_a_named_sms_goes_as_each_providers_approved_template_and_fails_over(
    cn_app: Flask,
) -> None:
    rt: Runtime = cn_app.extensions["notifier"]
    down = TransientProviderError("Aliyun 503", provider="aliyun")
    ali = MemoryTemplateProvider("aliyun", "named", [down])
    ten = MemoryTemplateProvider("tencent", "ordered")
    notification_id = accepted(cn_app, {"to": CN, "template": "shipped", "data": DATA})
    outcome = deliver_sms(delivery(rt, sms=[ali, ten]), notification_id)
    assert (outcome.status, outcome.attempt) == ("sent", 1)
    assert ali.sent == [] and ten.sent == [(CN, tencent.SHIPPED, ["Acme", "1234"], None)]
    assert record(rt, notification_id) == ("sent", "tencent", None)
    again = accepted(cn_app, {"to": CN, "template": "shipped", "data": DATA})
    deliver_sms(delivery(rt, sms=[ali, ten]), again)
    assert ali.sent == [(CN, aliyun.SHIPPED, {"shop": "Acme", "order": "1234"}, None)]


def test_only_the_providers_that_can_carry_it_are_tried(cn_app: Flask) -> None:
    rt: Runtime = cn_app.extensions["notifier"]
    down = TransientProviderError("Aliyun 503", provider="aliyun")
    ali = MemoryTemplateProvider("aliyun", "named", [down])
    ten = MemoryTemplateProvider("tencent", "ordered")
    text = MemorySmsProvider(name="twilio")
    notification_id = accepted(cn_app, {"to": CN, "template": "aliyun_only", "data": DATA})
    outcome = deliver_sms(delivery(rt, sms=[ali, ten, text]), notification_id)
    # Tencent has no approved template of it and Twilio no text: Aliyun is the only way.
    assert outcome.status == "retry"
    assert (ten.sent, text.sent) == ([], [])
    assert record(rt, notification_id) == ("retrying", "aliyun", "Aliyun 503")


def test_a_permanent_refusal_fails_at_once_without_failover(cn_app: Flask) -> None:
    rt: Runtime = cn_app.extensions["notifier"]
    bad = PermanentProviderError("isv.MOBILE_NUMBER_ILLEGAL", provider="aliyun")
    ali = MemoryTemplateProvider("aliyun", "named", [bad])
    ten = MemoryTemplateProvider("tencent", "ordered")
    notification_id = accepted(cn_app, {"to": CN, "template": "shipped", "data": DATA})
    assert deliver_sms(delivery(rt, sms=[ali, ten]), notification_id).status == "failed"
    assert ten.sent == []
    assert record(rt, notification_id) == ("failed", "aliyun", "isv.MOBILE_NUMBER_ILLEGAL")


def test_a_vendors_per_number_limit_hands_a_notification_to_the_next_provider(
    cn_app: Flask,
) -> None:
    """Tencent's default is a few SMS a number a day: a third order update is a client's own
    send, which Aliyun carries (a code past the limit fails for good instead: test_captcha);
    past every provider's limit it is retried as when they are down."""
    rt: Runtime = cn_app.extensions["notifier"]
    daily = RecipientThrottled(
        "tencent LimitExceeded.PhoneNumberDailyLimit", provider="tencent", code="daily"
    )
    ten = MemoryTemplateProvider("tencent", "ordered", [daily])
    ali = MemoryTemplateProvider("aliyun", "named")
    notification_id = accepted(cn_app, {"to": CN, "template": "shipped", "data": DATA})
    assert deliver_sms(delivery(rt, sms=[ten, ali]), notification_id).status == "sent"
    assert record(rt, notification_id) == ("sent", "aliyun", None)
    hourly = RecipientThrottled("isv.BUSINESS_LIMIT_CONTROL", provider="aliyun", code="hour")
    limited = [
        MemoryTemplateProvider("tencent", "ordered", [daily]),
        MemoryTemplateProvider("aliyun", "named", [hourly]),
    ]
    again = accepted(cn_app, {"to": CN, "template": "shipped", "data": DATA})
    assert deliver_sms(delivery(rt, sms=limited), again).status == "retry"
    assert record(rt, again)[0] == "retrying"


def test_an_sms_no_provider_can_carry_any_more_fails_at_once(app: Flask) -> None:
    rt: Runtime = app.extensions["notifier"]
    notification_id = accepted(app, {"to": CN, "text": "Parcel"})
    # The operator has since made +86 template-only.
    ali = MemoryTemplateProvider("aliyun", "named")
    assert deliver_sms(delivery(rt, sms=[ali]), notification_id).status == "failed"
    status, provider, error = record(rt, notification_id)
    assert (status, provider, ali.sent) == ("failed", None, [])
    assert error == "no provider for this number can carry this SMS now (its providers: aliyun)"


@pytest.mark.parametrize(
    ("phone", "status", "attempts"),
    [(CN, "sent", 1), ("+8613800000001", "retry", 1), ("+8613800000002", "failed", 1)],
)
def test_a_test_keys_sms_is_simulated_from_its_number(
    make_settings: Callable[..., Settings], phone: str, status: str, attempts: int
) -> None:
    ci = {
        "client": "ci", "key_sha256": hashlib.sha256(b"ntf_ci").hexdigest(),
        "scopes": ["sms"], "mode": "test",
    }  # fmt: skip
    app = create_app(make_settings(api_keys=[*api_clients(), ci]))
    rt: Runtime = app.extensions["notifier"]
    provider = MemorySmsProvider()
    notification_id = accepted(app, {"to": phone, "text": "Parcel"}, "ntf_ci")
    outcome = deliver_sms(delivery(rt, sms=[provider]), notification_id)
    assert (outcome.status, outcome.attempt, provider.sent) == (status, attempts, [])
    assert record(rt, notification_id)[1] == "test"


def test_a_batch_row_is_rendered_at_send_time_or_fails_once_its_content_is_gone(
    app: Flask,
) -> None:
    rt: Runtime = app.extensions["notifier"]
    rows = [{"to": CN, "data": DATA}, {"to": CN, "data": {"shop": "Bcme", "order": "7"}}]
    answer = app.test_client().post(
        "/v1/sms/batch", json={"template": "shipped", "recipients": rows}, headers=auth()
    )
    batch_id = answer.get_json()["id"]
    with app.app_context():
        fan_out(batch_id, store=rt.batches, queues=rt.row_queue_of)
    page = app.test_client().get(f"/v1/batches/{batch_id}/notifications", headers=auth())
    first, second = (item["id"] for item in page.get_json()["items"])
    provider = MemorySmsProvider()
    assert deliver_sms(delivery(rt, sms=[provider]), first).status == "sent"
    assert provider.sent == [(CN, "Acme: your parcel 1234 ships today.")]
    fresh = create_app(rt.settings).extensions["notifier"]  # another worker, no cached content
    rt.redis.delete(content_key(batch_id))  # expired, as a batch's content does in time
    assert deliver_sms(delivery(fresh, sms=[provider]), second).status == "failed"
    assert record(rt, second) == ("failed", "batch", "the batch's content expired")
    assert len(provider.sent) == 1

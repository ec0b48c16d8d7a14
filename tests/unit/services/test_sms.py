"""What services/sms.py decides without HTTP: which provider can carry an SMS, what a worker is
given, and which named SMS stop the start-up."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from config import Settings
from notifier import create_app
from notifier.errors import Refused
from notifier.providers.base import SmsProvider
from notifier.providers.memory import MemorySmsProvider, MemoryTemplateProvider
from notifier.services.sms import OutgoingSms, check_templates, refuse_uncarried
from notifier.settings import ConfigError
from notifier.templating import Approved, NamedSms, folders
from tests.support.harness.sms import cn_providers, templates_dir

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

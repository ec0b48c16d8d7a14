from __future__ import annotations

from pathlib import Path

import pytest

from notifier.errors import TemplateDataError, UnknownTemplate
from notifier.settings import ConfigError
from notifier.templating import (
    Approved,
    MailTemplates,
    NamedSms,
    RenderedSms,
    SmsShape,
    SmsTemplates,
    folders,
)

DATA = {"name": "Ada <script>", "product": "Acme & Co", "login_url": "https://acme.example/login"}


def test_renders_every_part_and_escapes_only_html() -> None:
    rendered = MailTemplates().render("welcome", DATA)
    assert rendered.subject == "Welcome to Acme & Co, Ada <script>"
    assert rendered.text is not None and "Hello Ada <script>," in rendered.text
    assert rendered.html is not None
    assert "Ada &lt;script&gt;" in rendered.html
    assert "Acme &amp; Co" in rendered.html


def test_a_template_file_changed_in_a_running_process_renders_its_new_text(
    tmp_path: Path,
) -> None:
    # Compiled code is kept for the process (CompiledOnce), checked against the file's text.
    (tmp_path / "mail").mkdir()
    (tmp_path / "sms").mkdir()
    mail, sms = tmp_path / "mail" / "news.txt", tmp_path / "sms" / "hi.en.txt"
    for first, then in (("First", "Second"), ("Second", "Third")):
        mail.write_text(first + " {{ name }}")
        sms.write_text(first + " {{ who }}")
        assert MailTemplates(mail.parent).render("news", DATA).text == f"{first} Ada <script>"
        assert SmsTemplates(sms.parent).render("hi", "en", who="Ada") == f"{first} Ada"
        mail.write_text(then + " {{ name }}")
        sms.write_text(then + " {{ who }}")
        assert MailTemplates(mail.parent).render("news", DATA).text == f"{then} Ada <script>"
        assert SmsTemplates(sms.parent).render("hi", "en", who="Ada") == f"{then} Ada"


def test_missing_variable_names_the_data_field() -> None:
    with pytest.raises(TemplateDataError) as caught:
        MailTemplates().render("welcome", {"name": "Ada"})
    assert caught.value.field == "data"  # the service answers 422 at ("body", "data")
    assert "product" in caught.value.reason


def test_data_the_templates_expressions_cannot_compute_with_names_the_data_field(
    tmp_path: Path,
) -> None:
    (tmp_path / "invoice.txt").write_text("Total: {{ price | round(2) }}; each {{ 1 / n }}")
    templates = MailTemplates(tmp_path)
    assert templates.render("invoice", {"price": 2.5, "n": 2}).text == "Total: 2.5; each 0.5"
    for data, error in (({"price": "2.5", "n": 2}, "TypeError"), ({"price": 1, "n": 0}, "Zero")):
        with pytest.raises(TemplateDataError) as caught:
            templates.render("invoice", data)
        assert caught.value.field == "data" and error in caught.value.reason


def test_unknown_template_names_the_template_field() -> None:
    with pytest.raises(UnknownTemplate) as caught:
        MailTemplates().render("nope", {})
    assert caught.value.field == "template"  # the service answers 422 at ("body", "template")
    assert "welcome" in caught.value.reason


SHIPPED = """
text = "{{ shop }}: your parcel {{ order }} ships {{ day | default('today') }}."

[aliyun]
id = "SMS_470000001"
params = { shop = "{{ shop }}", order = "{{ order }}" }

[tencent]
id = " 2100001 "
params = ["{{ shop }}", "{{ order }}"]
"""


def named_sms(tmp_path: Path, **files: str) -> NamedSms:
    """The named SMS of an operator's folder holding ``files`` (name: TOML), then the built-in."""
    (tmp_path / "sms").mkdir(exist_ok=True)
    for name, text in files.items():
        (tmp_path / "sms" / f"{name}.toml").write_text(text)
    return NamedSms(folders("sms", tmp_path))


def test_a_named_sms_renders_its_text_and_each_providers_params(tmp_path: Path) -> None:
    templates = named_sms(tmp_path, shipped=SHIPPED)
    rendered = templates.render("shipped", {"shop": "Acme", "order": "1234"})
    assert rendered.text == "Acme: your parcel 1234 ships today."
    assert rendered.approved == {
        "aliyun": Approved("SMS_470000001", {"shop": "Acme", "order": "1234"}),
        "tencent": Approved("2100001", ["Acme", "1234"]),
    }
    assert templates.shape("shipped") == SmsShape(
        text=True, approved={"aliyun": "named", "tencent": "ordered"}
    )
    assert templates.needs("shipped") == {"shop", "order", "day"}


def test_the_operators_file_replaces_the_built_in_one_of_its_name(tmp_path: Path) -> None:
    assert NamedSms().render("shipped", {"shop": "A", "order": "1"}).approved == {}
    templates = named_sms(tmp_path, shipped=SHIPPED, reminder='[aliyun]\nid = "SMS_1"\n')
    assert templates.names() == ["reminder", "shipped"]
    assert templates.render("shipped", {"shop": "A", "order": "1"}).approved
    # A provider's template without parameters, and no text.
    assert templates.render("reminder", {}) == RenderedSms(None, {"aliyun": Approved("SMS_1", [])})


def test_missing_data_names_data_and_an_unknown_name_names_template(tmp_path: Path) -> None:
    templates = named_sms(tmp_path, shipped=SHIPPED)
    with pytest.raises(TemplateDataError) as missing:
        templates.render("shipped", {"shop": "Acme"})  # order is in the text and the params
    assert (missing.value.field, missing.value.reason) == (
        "data",
        "missing variable: 'order' is undefined",
    )
    with pytest.raises(UnknownTemplate) as unknown:
        templates.render("nope", {})
    assert unknown.value.field == "template"
    assert "shipped" in unknown.value.reason


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("text = 'x'\nsubject = 'y'\n", "'subject': only text and providers' tables go here"),
        ("text = 3\n", "text must be a string"),
        ("# nothing\n", "give text, a provider's approved template, or both"),
        (
            "[aliyun]\nparams = {a = '{{ a }}'}\n",
            "[aliyun]: id, the approved template's, is required",
        ),
        ("[aliyun]\nid = 'S'\nparams = 'x'\n", "params is a table (named) or an array"),
        ("[aliyun]\nid = 'S'\nparams = [1]\n", "every parameter is a string"),
        ("[aliyun]\nid = 'S'\ncode = 'x'\n", "unknown keys ['code']"),
        ("text = '{{ x'\n", "a template has a syntax error"),
        ("text = 'unterminated\n", "Expected"),  # not TOML
    ],
)
def test_a_file_that_cannot_be_a_named_sms_stops_the_start_up(
    tmp_path: Path, text: str, problem: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        named_sms(tmp_path, broken=text)
    assert str(caught.value).startswith("NOTIFIER_TEMPLATES_DIR: sms/broken.toml: ")
    assert problem in str(caught.value)


def test_a_file_whose_name_no_request_can_give_stops_the_start_up(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="the name must match"):
        named_sms(tmp_path, **{"Shipped": "text = 'x'"})

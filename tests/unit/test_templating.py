from __future__ import annotations

import pytest

from notifier.errors import TemplateDataError, UnknownTemplate
from notifier.templating import MailTemplates

DATA = {"name": "Ada <script>", "product": "Acme & Co", "login_url": "https://acme.example/login"}


def test_renders_every_part_and_escapes_only_html() -> None:
    rendered = MailTemplates().render("welcome", DATA)
    assert rendered.subject == "Welcome to Acme & Co, Ada <script>"
    assert rendered.text is not None and "Hello Ada <script>," in rendered.text
    assert rendered.html is not None
    assert "Ada &lt;script&gt;" in rendered.html
    assert "Acme &amp; Co" in rendered.html


def test_missing_variable_names_the_data_field() -> None:
    with pytest.raises(TemplateDataError) as caught:
        MailTemplates().render("welcome", {"name": "Ada"})
    assert caught.value.field == "data"  # the service answers 422 at ("body", "data")
    assert "product" in caught.value.reason


def test_unknown_template_names_the_template_field() -> None:
    with pytest.raises(UnknownTemplate) as caught:
        MailTemplates().render("nope", {})
    assert caught.value.field == "template"  # the service answers 422 at ("body", "template")
    assert "welcome" in caught.value.reason

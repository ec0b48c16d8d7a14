from __future__ import annotations

import pytest

from notifier.errors import Unprocessable
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
    with pytest.raises(Unprocessable) as caught:
        MailTemplates().render("welcome", {"name": "Ada"})
    (error,) = caught.value.errors
    assert error.loc == ("body", "data")
    assert "product" in error.msg


def test_unknown_template_names_the_template_field() -> None:
    with pytest.raises(Unprocessable) as caught:
        MailTemplates().render("nope", {})
    (error,) = caught.value.errors
    assert error.loc == ("body", "template")
    assert "welcome" in error.msg

"""Named mail templates: ``templates/mail/<name>.subject.txt``, ``<name>.txt``, ``<name>.html``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from notifier.errors import TemplateDataError, UnknownTemplate

TEMPLATE_DIR = Path(__file__).parent / "templates" / "mail"
SMS_TEMPLATE_DIR = Path(__file__).parent / "templates" / "sms"
PARTS = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}


@dataclass(frozen=True)
class RenderedMail:
    subject: str | None
    text: str | None
    html: str | None


class MailTemplates:
    """Render named templates strictly: a missing variable is an error, never an empty string."""

    def __init__(self, directory: Path = TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            # Only the HTML part is escaped: text and subject are not markup.
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
        )

    def names(self) -> list[str]:
        """The names of the templates there are."""
        found = {name.split(".", 1)[0] for name in self._env.list_templates()}
        return sorted(found)

    def render(self, name: str, data: Mapping[str, Any]) -> RenderedMail:
        """Render every part the template has; a :class:`~notifier.errors.TemplateError` if not."""
        parts: dict[str, str | None] = {}
        for part, suffix in PARTS.items():
            try:
                template = self._env.get_template(name + suffix)
            except jinja2.TemplateNotFound:
                parts[part] = None
                continue
            try:
                parts[part] = template.render(**data)
            except jinja2.UndefinedError as e:
                raise TemplateDataError(
                    f"template {name!r} needs data it was not given",
                    reason=f"missing variable: {e.message}",
                ) from None
            except jinja2.TemplateError as e:
                raise TemplateDataError(
                    f"template {name!r} could not be rendered", reason=str(e.message)
                ) from None
        if parts["text"] is None and parts["html"] is None:
            raise UnknownTemplate(
                f"there is no template called {name!r}",
                reason=f"unknown template; known: {self.names()}",
            )
        subject = parts["subject"].strip() if parts["subject"] is not None else None
        return RenderedMail(subject=subject, text=parts["text"], html=parts["html"])


class SmsTemplates:
    """Render SMS texts, ``templates/sms/<name>.<locale>.txt``; plain text, strict variables."""

    def __init__(self, directory: Path = SMS_TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, name: str, locale: str, **data: Any) -> str:
        """The text of template ``name`` in ``locale``, on one line."""
        text = self._env.get_template(f"{name}.{locale}.txt").render(**data)
        return " ".join(text.split())

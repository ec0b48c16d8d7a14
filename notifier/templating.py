"""Templates: named mails, ``templates/mail/<name>.subject.txt``, ``<name>.txt``, ``<name>.html``;
captcha texts, ``templates/sms/captcha.<locale>.txt``; captcha mails,
``templates/mail_captcha/<locale>.subject.txt``, ``.txt``, ``.html``.

An operator's folder (``NOTIFIER_TEMPLATES_DIR``) with the same layout comes first: a file there
replaces the built-in one of its name, and adds a named mail where there was none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from notifier.errors import TemplateDataError, UnknownTemplate

BUILT_IN = Path(__file__).parent / "templates"
TEMPLATE_DIR = BUILT_IN / "mail"
SMS_TEMPLATE_DIR = BUILT_IN / "sms"
MAIL_CAPTCHA_DIR = BUILT_IN / "mail_captcha"
PARTS = {"subject": ".subject.txt", "text": ".txt", "html": ".html"}


@dataclass(frozen=True)
class Needs:
    """What a named mail reads from its data: the variables of every part, and of its subject
    (``None`` when it has no subject part)."""

    variables: frozenset[str]
    subject: frozenset[str] | None


@dataclass(frozen=True)
class RenderedMail:
    subject: str | None
    text: str | None
    html: str | None


class MailTemplates:
    """Render named templates strictly: a missing variable is an error, never an empty string."""

    def __init__(self, directory: Path | Sequence[Path] = TEMPLATE_DIR) -> None:
        # A list of folders: the first that has a file gives it.
        self._loader = jinja2.FileSystemLoader(directory)
        self._env = jinja2.Environment(
            loader=self._loader,
            # Only the HTML part is escaped: text and subject are not markup.
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",)),
            undefined=jinja2.StrictUndefined,
            keep_trailing_newline=False,
        )

    def names(self) -> list[str]:
        """The names of the templates there are."""
        found = {name.split(".", 1)[0] for name in self._env.list_templates()}
        return sorted(found)

    def needs(self, name: str) -> Needs:
        """The variables template ``name`` reads (its parts' own and the engine's aside)."""
        found: dict[str, frozenset[str]] = {}
        for part, suffix in PARTS.items():
            try:
                source, _, _ = self._loader.get_source(self._env, name + suffix)
            except jinja2.TemplateNotFound:
                continue
            read = jinja2.meta.find_undeclared_variables(self._env.parse(source))
            found[part] = frozenset(read - set(self._env.globals))
        return Needs(variables=frozenset().union(*found.values()), subject=found.get("subject"))

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

    def __init__(self, directory: Path | Sequence[Path] = SMS_TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            autoescape=False,
            undefined=jinja2.StrictUndefined,
        )

    def render(self, name: str, locale: str, **data: Any) -> str:
        """The text of template ``name`` in ``locale``, on one line."""
        text = self._env.get_template(f"{name}.{locale}.txt").render(**data)
        return " ".join(text.split())


def folders(kind: str, operator: Path | None) -> list[Path]:
    """Where templates of ``kind`` (``mail``, ``sms``, ``mail_captcha``) are looked for."""
    return [*([operator / kind] if operator is not None else []), BUILT_IN / kind]

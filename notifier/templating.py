"""Templates: named mails, ``templates/mail/<name>.subject.txt``, ``<name>.txt``, ``<name>.html``;
named SMS, ``templates/sms/<name>.toml`` (see :class:`NamedSms`); captcha texts,
``templates/sms/captcha.<locale>.txt``; captcha mails,
``templates/mail_captcha/<locale>.subject.txt``, ``.txt``, ``.html``.

An operator's folder (``NOTIFIER_TEMPLATES_DIR``) with the same layout comes first: a file there
replaces the built-in one of its name, and adds a named mail where there was none.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import jinja2
import jinja2.meta

from notifier.errors import TemplateDataError, UnknownTemplate
from notifier.settings import ConfigError

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


def render(template: jinja2.Template, data: Mapping[str, Any], name: str) -> str:
    """``template`` (a part of the one called ``name``) rendered with ``data``; a
    TemplateDataError naming what is missing, or what failed."""
    try:
        return template.render(**data)
    except jinja2.UndefinedError as e:
        raise TemplateDataError(
            f"template {name!r} needs data it was not given",
            reason=f"missing variable: {e.message}",
        ) from None
    except jinja2.TemplateError as e:
        raise TemplateDataError(
            f"template {name!r} could not be rendered", reason=str(e.message)
        ) from None
    except Exception as e:
        # What the caller's data does in the template's expressions: '{{ price | round(2) }}'
        # of the text "2.5" is a TypeError, '{{ 1 / n }}' of 0 a ZeroDivisionError. The data's
        # fault, to be named as such (a 422), not the service's (a 500).
        raise TemplateDataError(
            f"template {name!r} could not be rendered with this data",
            reason=f"{type(e).__name__}: {e}",
        ) from None


class CompiledOnce(jinja2.BytecodeCache):
    """Jinja's compiled code of each template file, kept for the process (Jinja's own bytecode
    cache API: keyed by the template's name and file, checked against its source's hash, so an
    edited file is compiled again). Each app that is built (a test's, a process's) checks every
    captcha template at start (``services.captcha.check_templates``): compiling them was 40% of
    building an app. One cache per kind of environment: the code depends on its options."""

    def __init__(self) -> None:
        self._code: dict[str, bytes] = {}

    def load_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        if (code := self._code.get(bucket.key)) is not None:
            bucket.bytecode_from_string(code)

    def dump_bytecode(self, bucket: jinja2.bccache.Bucket) -> None:
        self._code[bucket.key] = bucket.bytecode_to_string()


class MailTemplates:
    """Render named templates strictly: a missing variable is an error, never an empty string."""

    compiled = CompiledOnce()

    def __init__(self, directory: Path | Sequence[Path] = TEMPLATE_DIR) -> None:
        # A list of folders: the first that has a file gives it.
        self._loader = jinja2.FileSystemLoader(directory)
        self._env = jinja2.Environment(
            loader=self._loader,
            bytecode_cache=self.compiled,
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
            parts[part] = render(template, data, name)
        if parts["text"] is None and parts["html"] is None:
            raise UnknownTemplate(
                f"there is no template called {name!r}",
                reason=f"unknown template; known: {self.names()}",
            )
        subject = parts["subject"].strip() if parts["subject"] is not None else None
        return RenderedMail(subject=subject, text=parts["text"], html=parts["html"])


class SmsTemplates:
    """Render SMS texts, ``templates/sms/<name>.<locale>.txt``; plain text, strict variables."""

    compiled = CompiledOnce()

    def __init__(self, directory: Path | Sequence[Path] = SMS_TEMPLATE_DIR) -> None:
        self._env = jinja2.Environment(
            loader=jinja2.FileSystemLoader(directory),
            bytecode_cache=self.compiled,
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


# A named template's name, as requests give it (schemas.TemplateName says the same).
NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
# A provider's name, as a section of a named SMS gives it (NOTIFIER_SMS_PROVIDERS' names).
PROVIDER = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
Style = Literal["named", "ordered"]


@dataclass(frozen=True)
class Approved:
    """A provider's approved template, ready to send: its id and its parameters' values, named
    (Aliyun's ``TemplateParam``) or in order (Tencent's ``TemplateParamSet``)."""

    id: str
    params: dict[str, str] | list[str]

    @property
    def style(self) -> Style:
        return "named" if isinstance(self.params, dict) else "ordered"


@dataclass(frozen=True)
class RenderedSms:
    """A named SMS rendered with a request's data: its text (None when it has none), and each
    provider's approved template by the provider's name."""

    text: str | None
    approved: dict[str, Approved]


@dataclass(frozen=True)
class SmsShape:
    """What a named SMS offers, before any data: a text or not, and the style of each
    provider's approved template."""

    text: bool
    approved: dict[str, Style]


@dataclass(frozen=True)
class _Section:
    id: str
    params: dict[str, jinja2.Template] | list[jinja2.Template]


@dataclass(frozen=True)
class _Compiled:
    text: jinja2.Template | None
    sections: dict[str, _Section]
    variables: frozenset[str]


class NamedSms:
    """Named SMS for ``POST /v1/sms``: ``templates/sms/<name>.toml``, one file a template::

        # What Twilio and the development providers send: Jinja, the request's data as variables.
        text = "{{ shop }}: your parcel {{ order }} ships today."

        [aliyun]                            # a provider's approved template, by its name
        id = "SMS_470000001"                # Aliyun's TemplateCode
        params = { order = "{{ order }}" }  # TemplateParam: each ${variable}, by name

        [tencent]
        id = "2100001"                      # Tencent's TemplateId
        params = ["{{ order }}"]            # TemplateParamSet: {1}, {2}, ... in order

    ``text`` is for providers that send text; a table, for a provider that sends only the
    templates its console approved, names that template and fills its parameters, each a Jinja
    template of its own (a table for named parameters, an array for ordered ones). A file has
    ``text``, a provider's table, or both. Every file is read and compiled when this is made:
    one that cannot be stops the start-up (ConfigError); a missing variable when rendering is a
    :class:`~notifier.errors.TemplateDataError`, as for mail.
    """

    def __init__(self, directory: Path | Sequence[Path] = SMS_TEMPLATE_DIR) -> None:
        folders = [directory] if isinstance(directory, Path) else list(directory)
        self._env = jinja2.Environment(autoescape=False, undefined=jinja2.StrictUndefined)
        self._templates: dict[str, _Compiled] = {}
        for folder in reversed(folders):  # the first folder's file of a name wins
            for path in sorted(folder.glob("*.toml")) if folder.is_dir() else ():
                self._templates[path.stem] = self._load(path)

    def names(self) -> list[str]:
        """The names of the templates there are."""
        return sorted(self._templates)

    def needs(self, name: str) -> frozenset[str]:
        """The variables template ``name`` reads, in its text and every provider's parameters."""
        return self._find(name).variables

    def shape(self, name: str) -> SmsShape:
        """What template ``name`` offers: a text, and which providers' approved templates."""
        found = self._find(name)
        return SmsShape(
            text=found.text is not None,
            approved={
                p: "named" if isinstance(s.params, dict) else "ordered"
                for p, s in found.sections.items()
            },
        )

    def render(self, name: str, data: Mapping[str, Any]) -> RenderedSms:
        """Render the text and every provider's parameters; a TemplateError if they cannot be."""
        found = self._find(name)

        def fill(template: jinja2.Template) -> str:
            return render(template, data, name).strip()

        approved = {
            provider: Approved(
                section.id,
                {k: fill(t) for k, t in section.params.items()}
                if isinstance(section.params, dict)
                else [fill(t) for t in section.params],
            )
            for provider, section in found.sections.items()
        }
        return RenderedSms(None if found.text is None else fill(found.text), approved)

    def _find(self, name: str) -> _Compiled:
        found = self._templates.get(name)
        if found is None:
            raise UnknownTemplate(
                f"there is no SMS template called {name!r}",
                reason=f"unknown template; known: {self.names()}",
            )
        return found

    def _load(self, path: Path) -> _Compiled:
        where = f"NOTIFIER_TEMPLATES_DIR: sms/{path.name}"
        try:
            if not NAME.match(path.stem):
                raise ValueError(f"the name must match {NAME.pattern}")
            with path.open("rb") as file:
                spec = tomllib.load(file)
            return self._compile(spec)
        except (OSError, tomllib.TOMLDecodeError, ValueError) as e:
            raise ConfigError(f"{where}: {e}") from None
        except jinja2.TemplateSyntaxError as e:
            raise ConfigError(f"{where}: a template has a syntax error: {e.message}") from None

    def _compile(self, spec: dict[str, Any]) -> _Compiled:
        text = spec.pop("text", None)
        if text is not None and not isinstance(text, str):
            raise ValueError("text must be a string")
        sections: dict[str, _Section] = {}
        sources = [] if text is None else [text]
        for provider, section in spec.items():
            if not (isinstance(section, dict) and PROVIDER.match(provider)):
                raise ValueError(f"{provider!r}: only text and providers' tables go here")
            sections[provider] = self._section(provider, dict(section), sources)
        if text is None and not sections:
            raise ValueError("give text, a provider's approved template, or both")
        variables = frozenset().union(
            *(jinja2.meta.find_undeclared_variables(self._env.parse(s)) for s in sources)
        )
        compiled = None if text is None else self._env.from_string(text)
        return _Compiled(compiled, sections, variables - set(self._env.globals))

    def _section(self, provider: str, section: dict[str, Any], sources: list[str]) -> _Section:
        approved_id = section.pop("id", None)
        params = section.pop("params", [])
        if section:
            raise ValueError(f"[{provider}]: unknown keys {sorted(section)} (id, params)")
        if not isinstance(approved_id, str) or not approved_id.strip():
            raise ValueError(f"[{provider}]: id, the approved template's, is required")
        if isinstance(params, dict):
            values = list(params.values())
        elif isinstance(params, list):
            values = params
        else:
            raise ValueError(f"[{provider}]: params is a table (named) or an array (in order)")
        if not all(isinstance(v, str) for v in values):
            raise ValueError(f"[{provider}]: every parameter is a string (a Jinja template)")
        sources += values
        compiled: dict[str, jinja2.Template] | list[jinja2.Template] = (
            {k: self._env.from_string(v) for k, v in params.items()}
            if isinstance(params, dict)
            else [self._env.from_string(v) for v in values]
        )
        return _Section(approved_id.strip(), compiled)

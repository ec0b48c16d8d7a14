"""docs/CONTRACT.md, the public contract in the repository, says what /openapi.json says."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

from notifier.settings import variables

PAGE = Path(__file__).resolve().parents[2] / "docs" / "CONTRACT.md"
ROW = re.compile(r"^\| `(GET|POST|DELETE|PUT|PATCH) (/\S*)` \| [^|]+ \| ([\d, ]+) \|$", re.M)


def test_every_route_and_its_answers_are_on_the_contract_page(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    served = {
        (method.upper(), path, frozenset(int(status) for status in operation["responses"]))
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    }
    documented = {
        (method, path, frozenset(int(s) for s in statuses.split(",")))
        for method, path, statuses in ROW.findall(PAGE.read_text())
    }
    assert documented == served


def test_the_readme_points_at_the_contract_page() -> None:
    readme = (PAGE.parents[1] / "README.md").read_text()
    assert "](docs/CONTRACT.md)" in readme
    assert "../shared" not in readme  # nothing outside the repository


def documented_settings(page: str) -> set[str]:
    """The variables a page's tables name, ``NOTIFIER_MAIL_SERVER``, ``_PORT`` written out."""
    names: set[str] = set()
    for line in page.splitlines():
        if not line.startswith("| `NOTIFIER_"):
            continue
        written = re.findall(r"`(NOTIFIER_[A-Z0-9_]+|_[A-Z0-9_]+)`", line.split("|")[1])
        names.update(name for name in written if name.startswith("NOTIFIER_"))
        # A short ``_X`` continues its row's first name: NOTIFIER_MAIL_SERVER, _PORT is
        # NOTIFIER_MAIL_PORT; NOTIFIER_RETRY_MAX, _RETRY_BASE is NOTIFIER_RETRY_BASE.
        stem = written[0].split("_")
        names.update(
            "_".join(stem[:i]) + short
            for short in written
            if short.startswith("_")
            for i in range(1, len(stem))
        )
    return names


def test_every_setting_the_code_reads_is_on_the_contract_page() -> None:
    assert variables() - documented_settings(PAGE.read_text()) == set()


def test_every_setting_the_code_reads_is_in_the_settings_table() -> None:
    assert variables() - documented_settings((PAGE.parent / "settings.md").read_text()) == set()


def test_every_setting_the_docs_name_is_one_the_code_reads() -> None:
    read = variables()
    for page in (PAGE.parents[1] / "README.md", *PAGE.parent.glob("*.md")):
        # The section on unknown variables shows some on purpose.
        text = re.sub(r"\n## Unknown variables\n.*?(?=\n## |\Z)", "", page.read_text(), flags=re.S)
        # NOTIFIER_S3_* names a family, not a setting.
        named = set(re.findall(r"NOTIFIER_[A-Z0-9_]+(?<!_)(?![A-Z0-9_]*\*)", text))
        assert named - read == set(), page.name

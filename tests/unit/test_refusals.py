"""Services speak the domain: they raise refusals, and the API layer alone answers them."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from notifier import errors
from notifier.api.problems import answer
from notifier.errors import ApiError, Fault, Limited, NotAllowed, Refused, Unavailable

ROOT = Path(__file__).resolve().parents[2]
# Below the API layer: what a request is refused for is said here in the domain's terms.
DOMAIN = [ROOT / "notifier" / "services", ROOT / "notifier" / "providers"]
HTTP_ERRORS = {
    name for name, cls in inspect.getmembers(errors, inspect.isclass) if issubclass(cls, ApiError)
}


def _http_words(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module == "notifier.errors":
            found += [f"imports {a.name}" for a in node.names if a.name in HTTP_ERRORS]
        elif isinstance(node, ast.Constant) and node.value in ("Retry-After", "body"):
            found.append(f"says {node.value!r}")
    return [f"{path.relative_to(ROOT)}:{word}" for word in found]


def test_no_service_or_provider_builds_an_http_answer() -> None:
    found = [
        w for folder in DOMAIN for path in sorted(folder.rglob("*.py")) for w in _http_words(path)
    ]
    assert found == []


@pytest.mark.parametrize(
    ("refusal", "status", "headers", "fields"),
    [
        (Refused("to", "1 to 50"), 422, {}, [(("body", "to"), "1 to 50")]),
        (
            Refused.of("2 rows", [Fault(("recipients", 0, "data"), "x"), Fault(("subject",), "y")]),
            422,
            {},
            [(("body", "recipients", 0, "data"), "x"), (("body", "subject"), "y")],
        ),
        (Limited(60, "a limit"), 429, {"Retry-After": "60"}, []),
        (Unavailable("not recorded yet", retry_after=30), 503, {"Retry-After": "30"}, []),
        (Unavailable("not configured"), 503, {}, []),
        (NotAllowed("not its bucket"), 403, {}, []),
    ],
)
def test_each_refusal_has_one_answer(
    refusal: errors.Refusal, status: int, headers: dict[str, str], fields: list[object]
) -> None:
    answered = answer(refusal)
    assert (answered.status, answered.headers, answered.detail) == (status, headers, refusal.detail)
    assert [(e.loc, e.msg) for e in answered.errors] == fields

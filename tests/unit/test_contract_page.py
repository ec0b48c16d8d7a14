"""docs/CONTRACT.md, the public contract in the repository, says what /openapi.json says."""

from __future__ import annotations

import re
from pathlib import Path

from flask.testing import FlaskClient

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

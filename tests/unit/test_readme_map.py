"""The README's map of the code names every module there is, and none that is not."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_map_names_every_module_of_the_package() -> None:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("## How it is built", 1)[1].split("```")[1]
    named = set(re.findall(r"(?<![\w.])([a-z0-9_]+\.py)\b", block))
    modules = {p.name for p in (ROOT / "notifier").rglob("*.py")}
    assert modules - named == set()
    assert named - modules - {"config.py", "celery_app.py"} == set()

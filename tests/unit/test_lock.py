"""The locks in requirements/ hold what the pyproject.toml files ask for: a requirement changed
without ``scripts/lock`` after it (a new package, a bound the locked version is outside) fails here."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
PROJECTS = [ROOT / "pyproject.toml", ROOT / "clients" / "python" / "pyproject.toml"]
LOCKS = ROOT / "requirements"


def locked(lock: Path) -> dict[str, Version]:
    """Each package ``lock`` pins (by its normalized name) and its version; every pin is hashed."""
    pins: dict[str, Version] = {}
    text = lock.read_text().replace("\\\n", " ")
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        requirement, _, hashes = line.partition(" --hash=")
        assert hashes, f"{lock.name}: {requirement} has no hash"
        pinned = Requirement(requirement)
        (spec,) = pinned.specifier
        assert spec.operator == "==", f"{lock.name}: {requirement} is not pinned"
        pins[canonicalize_name(pinned.name)] = Version(spec.version)
    return pins


def asked(extra: str | None) -> list[Requirement]:
    """What the two projects require to be built and installed (with ``extra`` of Notifier's)."""
    requirements: list[str] = []
    for path in PROJECTS:
        project = tomllib.loads(path.read_text())
        requirements += project["build-system"]["requires"]
        requirements += project["project"]["dependencies"]
        if extra and path == PROJECTS[0]:
            requirements += project["project"]["optional-dependencies"][extra]
    return [Requirement(text) for text in requirements]


def with_extras(requirement: Requirement) -> list[Requirement]:
    """What ``requirement``'s extras add, as the installed distribution declares them."""
    added = []
    for text in metadata.requires(requirement.name) or []:
        declared = Requirement(text)
        marker = declared.marker
        if marker and any(marker.evaluate({"extra": extra}) for extra in requirement.extras):
            added.append(declared)
    return added


def disagreements(requirements: list[Requirement], pins: dict[str, Version]) -> list[str]:
    """Each requirement that ``pins`` leaves out or pins at a version it does not allow."""
    found = []
    for requirement in requirements:
        version = pins.get(canonicalize_name(requirement.name))
        if version is None:
            found.append(f"{requirement}: not locked")
        elif not requirement.specifier.contains(version, prereleases=True):
            found.append(f"{requirement}: locked {version}")
    return found


@pytest.mark.parametrize(("lock", "extra"), [("service.txt", None), ("test.txt", "test")])
def test_each_lock_holds_what_the_projects_ask_for(lock: str, extra: str | None) -> None:
    pins = locked(LOCKS / lock)
    requirements = asked(extra)
    extras = [added for r in requirements if r.extras for added in with_extras(r)]
    assert extras, "celery[redis] and redis[hiredis] add packages"
    assert disagreements(requirements + extras, pins) == [], "run scripts/lock"


def test_the_environment_is_the_lock() -> None:
    """What the extras add is read from the installed distributions: they are the locked ones."""
    wrong = {
        name: (str(version), metadata.version(name))
        for name, version in locked(LOCKS / "test.txt").items()
        if name in {canonicalize_name(r.name) for r in asked("test")}
        and Version(metadata.version(name)) != version
    }
    assert wrong == {}, "run scripts/bootstrap test"


def test_the_service_lock_is_the_tests_cut_down() -> None:
    tests = locked(LOCKS / "test.txt")
    service = locked(LOCKS / "service.txt")
    assert {name: version for name, version in service.items() if tests.get(name) != version} == {}


def test_a_requirement_the_lock_does_not_hold_is_named() -> None:
    pins = {"redis": Version("8.2.0"), "celery": Version("5.7.0")}
    requirements = ["redis[hiredis]>=5.0,<8", "pytest-xdist>=3.6", "Celery>=5.4,<6"]
    assert disagreements([Requirement(r) for r in requirements], pins) == [
        "redis[hiredis]<8,>=5.0: locked 8.2.0",
        "pytest-xdist>=3.6: not locked",
    ]

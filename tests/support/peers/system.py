"""The system packages a test may run: the ones its markers name.

``scripts/test -m "not rabbitmq and not postfix and not browser and not prometheus"`` leaves out
what needs a system package only if every such test carries its marker. So a peer that runs a
package's program calls ``require`` first: a test without the marker fails on every machine, not
only on one without the package. tests/conftest.py tells this module the running test's markers.
"""

from __future__ import annotations

# The markers of the test being run; None outside a pytest run (the benchmark, a shell).
marks: set[str] | None = None


def require(mark: str, package: str) -> None:
    """Fail unless the running test carries ``mark``, the marker of ``package``."""
    if marks is not None and mark not in marks:
        raise AssertionError(
            f"this test runs {package}: mark it @pytest.mark.{mark} (pyproject.toml's markers), "
            f'so that -m "not {mark}" leaves it out where {package} is not installed'
        )

"""Notifier's typed settings, by the name the contract gives them (``from config import Settings``).

They live in the package, :mod:`notifier.settings`; this module re-exports every public name of
it, and the package never imports this one.
"""

from notifier.settings import *  # noqa: F403
from notifier.settings import __all__ as __all__

"""The stores' Lua scripts: each in a file of its own under ``lua/<store>/``, read once.

Every status change of a record, every limit taken and every slot reserved is one script, so
that two processes can never both make it: they are the heart of the guarantees, and each sits
in a ``.lua`` file an editor highlights and a reader finds by name. A file opens with what it
does, then its ``KEYS`` and ``ARGV`` one a line, then what it returns (a test holds every index
the script reads to that header).

What several scripts share is a library under ``lua/lib/``, pulled in by a line
``--#include lib/<name>.lua`` (a Lua comment, so the file stays valid Lua for a linter): the
line is replaced by the library's text, once a script however many of its includes name it.
Redis keeps no state between scripts, so a script must carry its libraries with it.

A store names a script as a class attribute, ``_claim = Lua("notifications/claim")``: the
attribute is the script registered on that store's ``redis`` client, made at first use and
kept (redis-py's :class:`~redis.commands.core.Script` sends ``EVALSHA`` and loads the text
again only when Redis answers ``NOSCRIPT``, as after a failover to a replica that never saw it).

In a pipeline a script goes in by :func:`queue` and the pipeline runs under :func:`reloading`:
redis-py's own way (``script(keys=…, args=…, client=pipe)``) asks ``SCRIPT EXISTS`` before
every ``execute`` (``Pipeline.load_scripts``), a round trip more each time, which the outcome of
every send paid.
"""

from __future__ import annotations

import functools
import hashlib
import re
from collections.abc import Callable, Sequence
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any, TypeVar, overload

from redis.client import Pipeline
from redis.commands.core import Script
from redis.exceptions import NoScriptError

T = TypeVar("T")

ROOT = files(__package__ or "notifier.stores") / "lua"
LIBRARY = "lib"
_INCLUDE = re.compile(r"^--#include (\S+)[ \t]*$", re.MULTILINE)


def _file(path: str) -> Traversable:
    return ROOT.joinpath(*path.split("/"))


@functools.cache
def source(name: str) -> str:
    """The text Redis runs for script ``name`` (``notifications/claim``): its file with its
    libraries in place of their includes."""
    included: set[str] = set()

    def expand(path: str) -> str:
        def include(match: re.Match[str]) -> str:
            library = match.group(1)
            if library in included:
                return ""
            included.add(library)
            return expand(library)

        return _INCLUDE.sub(include, _file(path).read_text(encoding="utf-8"))

    return expand(f"{name}.lua")


def names() -> list[str]:
    """Every script of the stores (not the libraries), as ``<store>/<script>``, sorted."""
    return sorted(
        f"{store.name}/{script.name.removesuffix('.lua')}"
        for store in ROOT.iterdir()
        if store.is_dir() and store.name != LIBRARY
        for script in store.iterdir()
        if script.name.endswith(".lua")
    )


def by_sha() -> dict[str, str]:
    """Each script's name by the SHA-1 Redis knows it by (``EVALSHA``, ``MONITOR``)."""
    return {hashlib.sha1(source(name).encode()).hexdigest(): name for name in names()}


class Lua:
    """A store's script, as a class attribute: registered on the store's ``redis`` at first
    use, once a store."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._slot = ""

    def __set_name__(self, owner: type, attribute: str) -> None:
        self._slot = f"_script_{attribute}"

    @overload
    def __get__(self, store: None, owner: type | None = None) -> Lua: ...
    @overload
    def __get__(self, store: object, owner: type | None = None) -> Script: ...
    def __get__(self, store: Any, owner: type | None = None) -> Lua | Script:
        if store is None:
            return self
        script: Script | None = store.__dict__.get(self._slot)
        if script is None:
            # Two threads may both make one: the same text, so either is the same script.
            script = store.redis.register_script(source(self.name))
            store.__dict__[self._slot] = script
        return script


def queue(pipe: Pipeline, script: Script, keys: Sequence[Any], args: Sequence[Any]) -> None:
    """Put ``script`` in ``pipe`` as a bare ``EVALSHA`` (run the pipeline under
    :func:`reloading`): what redis-py's cluster pipeline does too, leaving ``NOSCRIPT`` to the
    caller."""
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def reloading(write: Callable[[], T], *scripts: Script) -> T:
    """Make ``write``, a pipeline of ``scripts`` put in by :func:`queue`; when Redis has lost
    one (``NOSCRIPT``: restarted, flushed, a promoted replica), load them and make it again.

    The pipeline may have been made in part (the commands before the one refused), so ``write``
    must be safe to make again, as every write made durably is (``Replication.durably``).
    """
    try:
        return write()
    except NoScriptError:
        for script in scripts:
            script.registered_client.script_load(script.script)
        return write()

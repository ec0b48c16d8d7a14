"""The SNS hosts the tests use, reached at the test's local SNS server: imported by the tests
(``tests.support.peers.sns``) and, with nothing else of the tests, by the processes they start
(``sitecustomize`` here). It imports nothing that loads ``ssl``: a process imports it before
gevent patches ``ssl`` (gunicorn's web), and a class taken before that patch recurses without
end once mixed with the patched ones."""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
from collections.abc import Callable, Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any

# The names the local server's TLS certificate is for: the SNS hosts the tests use, no other.
SERVER_NAMES = (
    "sns.us-east-1.amazonaws.com",
    "sns.us-east-2.amazonaws.com",
    "sns.cn-north-1.amazonaws.com.cn",
)
CONNECTION = "urllib3.util.connection"


def resolving(port: int, real: Callable[..., Any]) -> Callable[..., Any]:
    """urllib3's ``create_connection`` (``real``; requests makes every connection with it),
    made to connect to 127.0.0.1:``port`` for :data:`SERVER_NAMES` on port 443, as
    ``curl --resolve`` would: the request still names the host, and TLS checks the
    certificate for it."""

    def create_connection(address: tuple[str, int], *args: Any, **kwargs: Any) -> Any:
        host, to = address
        if host.lower() in SERVER_NAMES and to == 443:
            return real(("127.0.0.1", port), *args, **kwargs)
        return real(address, *args, **kwargs)

    return create_connection


def patch(module: ModuleType, port: int) -> None:
    """Reach the local SNS server on ``port`` through ``module`` (urllib3's connection module)."""
    module.create_connection = resolving(port, module.create_connection)  # type: ignore[attr-defined]


class OnImport(importlib.abc.MetaPathFinder):
    """Patch urllib3's connection module as it is first imported, whenever that is."""

    def __init__(self, port: int) -> None:
        self.port = port

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != CONNECTION:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        loader, port = spec.loader, self.port
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            patch(module, port)

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def install(port: int) -> None:
    """From now on in this process, reach the local SNS server on ``port`` for the SNS hosts."""
    found = sys.modules.get(CONNECTION)
    if found is not None:
        patch(found, port)
    else:
        sys.meta_path.insert(0, OnImport(port))

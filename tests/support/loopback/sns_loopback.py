"""The SNS hosts the tests use, resolved to the test's local SNS server: imported by the tests
(``tests.support.peers.sns``) and, with nothing else of the tests, by the processes they start
(``sitecustomize`` here)."""

from __future__ import annotations

import socket
from collections.abc import Callable
from typing import Any

# The names the local server's TLS certificate is for: the SNS hosts the tests use, no other.
SERVER_NAMES = (
    "sns.us-east-1.amazonaws.com",
    "sns.us-east-2.amazonaws.com",
    "sns.cn-north-1.amazonaws.com.cn",
)


def resolving(port: int) -> Callable[..., Any]:
    """A ``socket.getaddrinfo`` that answers 127.0.0.1:``port`` for :data:`SERVER_NAMES` on port
    443, as ``curl --resolve`` would, and what the real one answers for anything else."""
    real = socket.getaddrinfo

    def getaddrinfo(host: Any, service: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if (
            isinstance(name, str)
            and name.lower() in SERVER_NAMES
            and str(service)
            in (
                "443",
                "https",
            )
        ):
            return real("127.0.0.1", port, *args, **kwargs)
        return real(host, service, *args, **kwargs)

    return getaddrinfo

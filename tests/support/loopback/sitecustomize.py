"""Read at the start-up of a process a test starts with this folder on its PYTHONPATH
(``tests.support.peers.sns.loopback_env``): the SNS hosts resolve to the test's local SNS server,
as ``curl --resolve`` would. Nothing else changes: the service's verifier, its host rules and
its TLS checks are production's, with the test's CA as the trust store (SSL_CERT_FILE)."""

from __future__ import annotations

import os
import socket

_port = os.environ.get("TESTS_SNS_LOOPBACK_PORT")
if _port:
    from sns_loopback import resolving  # type: ignore[import-not-found]  # this folder

    socket.getaddrinfo = resolving(int(_port))

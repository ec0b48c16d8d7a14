"""Read at the start-up of a process a test starts with this folder on its PYTHONPATH
(``tests.support.peers.sns.loopback_env``): the SNS hosts are reached at the test's local SNS
server, as ``curl --resolve`` would. Nothing else changes: the service's verifier, its host rules
and its TLS checks are production's, with the test's CA as the trust store (SSL_CERT_FILE)."""

from __future__ import annotations

import os

_port = os.environ.get("TESTS_SNS_LOOPBACK_PORT")
if _port:
    from sns_loopback import install  # type: ignore[import-not-found]  # this folder

    install(int(_port))

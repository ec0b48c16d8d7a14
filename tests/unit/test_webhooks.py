"""Callback signing matches Standard Webhooks; callbacks never reach a non-public address."""

from __future__ import annotations

import base64
import json
import socket
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import ThreadingHTTPServer

import pytest
import requests
from standardwebhooks.webhooks import Webhook

from notifier.webhooks import (
    DestinationRefused,
    PublicOnlyAdapter,
    check_url,
    literal_host_refused,
    new_webhook_id,
    public,
    secret_key,
    signed_headers,
)
from tests.support.peers.http_peer import PeerHandler

SECRET = "whsec_" + base64.b64encode(b"a callback secret of 32 bytes...").decode()


def test_signed_headers_verify_with_the_standardwebhooks_package() -> None:
    body = json.dumps({"id": "n-1", "status": "sent", "reference": "order-42"}).encode()
    webhook_id, timestamp = new_webhook_id(), int(datetime.now(UTC).timestamp())
    headers = signed_headers(secret_key(SECRET), webhook_id, timestamp, body)
    assert Webhook(SECRET).verify(body, headers) == json.loads(body)
    moment = datetime.fromtimestamp(timestamp, UTC)
    expected = Webhook(SECRET).sign(webhook_id, moment, body.decode())
    assert headers["webhook-signature"] == expected


def test_a_tampered_body_does_not_verify() -> None:
    body = b'{"status": "sent"}'
    now = int(datetime.now(UTC).timestamp())
    headers = signed_headers(secret_key(SECRET), new_webhook_id(), now, body)
    with pytest.raises(Exception, match="signature"):
        Webhook(SECRET).verify(b'{"status": "failed"}', headers)


@pytest.mark.parametrize("bad", ["not-a-secret", "whsec_***", "whsec_" + "QUJD"])
def test_a_secret_must_be_whsec_and_base64_of_enough_key(bad: str) -> None:
    with pytest.raises(ValueError, match="must"):
        secret_key(bad)


@pytest.mark.parametrize(
    ("address", "allowed"),
    [
        ("93.184.216.34", True),
        ("2606:4700::1111", True),
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.1", False),
        ("192.168.1.1", False),
        ("169.254.169.254", False),  # a cloud's metadata service
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fc00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:93.184.216.34", True),
        # An IPv4 carried in an IPv6 that a gateway reaches for it: NAT64 (RFC 6052), 6to4,
        # IPv4-compatible. Python calls these global (PrefectHQ/fastmcp#4400).
        ("64:ff9b::a9fe:a9fe", False),  # 169.254.169.254 through a NAT64
        ("64:ff9b::7f00:1", False),
        ("64:ff9b::5db8:d822", True),  # 93.184.216.34
        ("64:ff9b:1::a00:1", False),  # NAT64's local-use prefix (RFC 8215)
        ("2002:7f00:1::", False),  # 6to4 of 127.0.0.1
        ("2002:a00:1::1", False),
        ("2002:5db8:d822::1", True),
        ("::127.0.0.1", False),
        ("::", False),
    ],
)
def test_public_addresses(address: str, allowed: bool) -> None:
    assert public(address) is allowed


@pytest.mark.parametrize(
    "url",
    [
        "http://93.184.216.34/hook",  # not https
        "https://127.0.0.1/hook",
        "https://localhost/hook",
        "https://169.254.169.254/latest/meta-data/",
        "https://[::1]:8443/hook",
        "ftp://example.com/hook",
    ],
)
def test_production_refuses_urls_that_may_not_be_called(url: str) -> None:
    with pytest.raises(DestinationRefused):
        check_url(url, production=True)


@pytest.mark.parametrize(
    ("url", "refused"),
    [
        ("https://127.1/cb", True),
        ("https://0x7F000001/cb", True),
        ("https://2130706433/cb", True),
        ("https://0177.0.0.1/cb", True),
        ("https://0/cb", True),
        ("https://192.168.1/cb", True),
        ("https://1572395042/cb", False),  # 93.184.216.34, in one number: public
        ("https://93.184.216.34/cb", False),
        ("https://hooks.example.com/cb", False),  # a name: checked when it is resolved
        ("https://0x7f.example.com/cb", False),
    ],
)
def test_a_literal_host_is_read_as_the_resolver_reads_it(url: str, refused: bool) -> None:
    assert literal_host_refused(url) is refused


def test_production_takes_an_https_url_of_a_public_address() -> None:
    check_url("https://93.184.216.34/hook", production=True)


def test_a_name_that_does_not_resolve_now_is_tried_again_not_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A resolver's passing failure (EAI_AGAIN) dropped the callback for good."""

    def failing(*args: object, **kwargs: object) -> object:
        raise socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution")

    monkeypatch.setattr(socket, "getaddrinfo", failing)
    with pytest.raises(requests.ConnectionError, match="does not resolve") as raised:
        check_url("https://hooks.example.com/cb", production=True)
    assert not isinstance(raised.value, DestinationRefused)


def test_outside_production_local_receivers_are_allowed() -> None:
    check_url("http://127.0.0.1:8080/hook", production=False)


@pytest.fixture
def local_receiver() -> Iterator[tuple[str, list[bytes]]]:
    """An HTTP server on 127.0.0.1 that records what it is sent."""
    got: list[bytes] = []

    class Handler(PeerHandler):
        def do_POST(self) -> None:
            got.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(204)
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", got
    server.shutdown()
    server.server_close()


def test_the_guarded_adapter_refuses_the_connected_address(
    local_receiver: tuple[str, list[bytes]],
) -> None:
    """Even past the URL check (a name that re-resolved to a private address), no byte is sent."""
    url, got = local_receiver
    with requests.Session() as session:
        session.mount("http://", PublicOnlyAdapter(total=5, max_connections=1))
        with pytest.raises(DestinationRefused, match="non-public"):
            session.post(url, data=b"{}", timeout=5)
    assert got == []
    with requests.Session() as plain:  # the same receiver, without the guard: it answers
        assert plain.post(url, data=b"{}", timeout=5).status_code == 204
    assert got == [b"{}"]

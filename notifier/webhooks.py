"""Status callbacks: signed the Standard Webhooks way, sent only where they may go.

Signing (https://www.standardwebhooks.com): the secret is ``whsec_`` and base64; the signature
is ``v1,`` and the base64 HMAC-SHA256 of ``"<webhook-id>.<webhook-timestamp>.<body>"``, sent in
``webhook-signature`` beside ``webhook-id`` and ``webhook-timestamp``. The same webhook id goes
with every retry of one event, so a receiver can drop a repeat. The ``standardwebhooks`` package
verifies what this module signs (a test checks it byte for byte); the package itself is not
needed here, and brings an HTTP client of its own.

Where callbacks may go: in production only to https URLs whose host resolves to public
addresses, never to a private, loopback, link-local or otherwise reserved one (an internal
admin page, a cloud metadata service). The address is checked twice: when the URL is resolved
before sending, and again on the socket actually connected, so a name that resolves to a
public address once and a private one the next time (DNS rebinding) is still refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import socket
import uuid
from typing import ClassVar
from urllib.parse import urlsplit

import requests
from urllib3.connectionpool import HTTPConnectionPool

from notifier.deadline import DeadlineAdapter, watched_pools

SECRET_PREFIX = "whsec_"


class DestinationRefused(Exception):
    """A callback URL points where callbacks must not go; retrying does not help."""


def new_webhook_id() -> str:
    """An id for one event, kept for all of its retries."""
    return f"msg_{uuid.uuid4().hex}"


def secret_key(secret: str) -> bytes:
    """The HMAC key of a ``whsec_…`` secret; ValueError if it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"must start with {SECRET_PREFIX}")
    try:
        key = base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except ValueError:
        raise ValueError(f"must be {SECRET_PREFIX} and base64") from None
    if len(key) < 16:
        raise ValueError("must hold at least 16 bytes of key")
    return key


def signature(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> str:
    """``v1,<base64 HMAC-SHA256>`` of one delivery."""
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def signed_headers(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of one delivery of ``body``."""
    return {
        "Content-Type": "application/json",
        "webhook-id": webhook_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(key, webhook_id, timestamp, body),
    }


# IPv6 addresses that carry an IPv4 address a gateway reaches for them: NAT64's well-known
# prefix (RFC 6052) and the IPv4-compatible form, the IPv4 in their last 32 bits; 6to4
# (2002::/16) in bits 16-48 (ipaddress's ``sixtofour``). Python's ``is_global`` calls
# ``64:ff9b::a9fe:a9fe`` (169.254.169.254 through a NAT64) global (PrefectHQ/fastmcp#4400,
# langflow-ai/langflow#14174). NAT64's local-use prefix (RFC 8215) may embed anything.
_EMBEDS_LAST_32 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("::/96"))
_LOCAL_NAT64 = ipaddress.ip_network("64:ff9b:1::/48")


def public(address: str) -> bool:
    """Whether ``address`` is one a callback may reach (an IPv6 that carries an IPv4, mapped,
    NAT64's or 6to4's, as that IPv4)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip in _LOCAL_NAT64:
            return False
        if ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        elif ip.sixtofour is not None:
            ip = ip.sixtofour
        elif any(ip in net for net in _EMBEDS_LAST_32) and int(ip) > 1:
            ip = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return ip.is_global and not ip.is_multicast


def literal_address(host: str) -> str | None:
    """The address ``host`` spells, read as the resolver reads it; None for a name.

    ``getaddrinfo`` (and so every HTTP client) takes the old numeric forms of ``inet_aton``
    too: ``127.1``, ``0x7f000001``, ``2130706433``, ``0177.0.0.1`` and ``0`` all reach this
    machine, though ``ipaddress`` calls them names.
    """
    try:
        return str(ipaddress.ip_address(host.split("%", 1)[0]))
    except ValueError:
        pass
    try:
        return socket.inet_ntoa(socket.inet_aton(host))
    except OSError:
        return None


def literal_host_refused(url: str) -> bool:
    """Whether ``url``'s host is, as written, an address (or ``localhost``) that is not public."""
    host = (urlsplit(url).hostname or "").rstrip(".").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    address = literal_address(host)
    # A name is resolved and checked when a callback is sent.
    return address is not None and not public(address)


def check_url(url: str, *, production: bool) -> None:
    """Refuse a callback URL that may not be called: DestinationRefused saying why (a host
    that does not resolve now is a requests.ConnectionError: tried again like any receiver that
    does not answer)."""
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise DestinationRefused("not an http(s) URL with a host")
    if not production:
        return
    if parts.scheme != "https":
        raise DestinationRefused("must be https in production")
    try:
        found = socket.getaddrinfo(parts.hostname, parts.port or 443, type=socket.SOCK_STREAM)
    except OSError as e:
        # A resolver that fails (EAI_AGAIN) or a name not there yet passes like a receiver that
        # is down: tried again, for as long as a callback is (not dropped at the first).
        raise requests.ConnectionError(f"{parts.hostname} does not resolve: {e}") from None
    for *_, address in found:
        if not public(str(address[0])):
            raise DestinationRefused(f"{parts.hostname} resolves to a non-public address")


class _Guarded:
    """A urllib3 connection that refuses a socket connected to a non-public address."""

    def _new_conn(self) -> socket.socket:
        sock: socket.socket = super()._new_conn()  # type: ignore[misc]
        peer = str(sock.getpeername()[0])
        if not public(peer):
            sock.close()
            raise DestinationRefused(f"connected to a non-public address ({peer})")
        return sock


class PublicOnlyAdapter(DeadlineAdapter):
    """A :class:`DeadlineAdapter` whose connections reach public addresses only (production)."""

    pools: ClassVar[dict[str, type[HTTPConnectionPool]]] = watched_pools(_Guarded)

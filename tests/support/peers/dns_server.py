"""A DNS server on 127.0.0.1 (UDP) that answers the TXT records a test gives it, as a zone's
server would: a record longer than 255 octets is split into several character-strings (RFC
1035 3.3), which a verifier must join, as a 2048-bit DKIM key's record always is."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import dns.message
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.resolver
import dns.rrset


class DnsServer:
    """``records`` maps a name (``s1._domainkey.example.com``) to its TXT text."""

    def __init__(self) -> None:
        self.records: dict[str, str] = {}
        self.questions: list[str] = []
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._socket.bind(("127.0.0.1", 0))
        self.port: int = self._socket.getsockname()[1]
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> DnsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._socket.close()

    def _serve(self) -> None:
        while True:
            try:
                wire, client = self._socket.recvfrom(4096)
            except OSError:
                return  # closed
            query = dns.message.from_wire(wire)
            answer = dns.message.make_response(query)
            question = query.question[0]
            name = question.name.to_text().rstrip(".").lower()
            self.questions.append(name)
            text = self.records.get(name)
            if text is None or question.rdtype != dns.rdatatype.TXT:
                answer.set_rcode(dns.rcode.NXDOMAIN)
            else:
                chunks = [text[i : i + 255] for i in range(0, len(text), 255)]
                quoted = " ".join(f'"{chunk}"' for chunk in chunks)
                answer.answer.append(
                    dns.rrset.from_text(question.name, 300, dns.rdataclass.IN, "TXT", quoted)
                )
            self._socket.sendto(answer.to_wire(), client)

    @contextmanager
    def as_resolver(self) -> Iterator[None]:
        """dnspython's default resolver (which dkimpy asks) pointed here, for the block."""
        resolver = dns.resolver.Resolver(configure=False)
        resolver.nameservers = ["127.0.0.1"]
        resolver.port = self.port
        before = dns.resolver.default_resolver
        dns.resolver.default_resolver = resolver
        try:
            yield
        finally:
            dns.resolver.default_resolver = before

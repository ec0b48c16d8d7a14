"""Amazon SNS as a test meets it: a CA of the test's own, an SNS signing key and certificate,
messages signed the way AWS documents it, and an HTTPS server on loopback answering for the SNS
hosts (``sns.us-east-1.amazonaws.com`` and the others its certificate names).

The service reaches the server through :func:`loopback_adapter`, a
:class:`notifier.sns.CertificateAdapter` whose connections go to 127.0.0.1 and the server's
port: the URL keeps the real host, which the verifier's host rules check, and TLS checks the
server's certificate for that host against ``SSL_CERT_FILE`` (the test's CA, :func:`trust`).
A test of the whole service, whose verifier is the production one, reaches it the same way
below the adapter, in urllib3's ``create_connection`` (``tests/support/loopback/``, installed at
the start-up of the processes a test starts by their ``sitecustomize``), as ``curl --resolve``
would: only :data:`SERVER_NAMES` on port 443, and nothing of the service's own code or settings
changed.

:func:`sign` builds the string to sign itself, from AWS's page rather than from
``notifier.sns``: a mistake there would otherwise be made twice and pass.

:data:`AWS_CERTIFICATE` and :data:`AWS_MESSAGES` are real SNS messages and the certificate
they were signed with, from the tests of AWS's own validator (aws/aws-php-sns-message-validator,
tests/FunctionalValidationsTest.php, Apache License 2.0). The certificate was valid from
2021-09-07 to 2022-08-17; the messages were sent on 2022-07-28.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import os
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any, Self
from urllib.parse import urlsplit

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import NameOID
from urllib3.util.connection import create_connection

from notifier.deadline import watch, watched_pools
from notifier.sns import MAX_RESPONSE_BYTES, CertificateAdapter
from tests.support.loopback.sns_loopback import SERVER_NAMES
from tests.support.peers.http_peer import PeerHandler, PeerServer

TOPIC = "arn:aws:sns:us-east-1:123456789012:ses-events"
HOST = SERVER_NAMES[0]
CERT_PATH = "/SimpleNotificationService-0123456789abcdef0123456789abcdef.pem"
CERT_URL = f"https://{HOST}{CERT_PATH}"
_DAY = datetime.timedelta(days=1)


def _name(common: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common)])


def _certificate(
    subject: str,
    key: Any,
    issuer: x509.Certificate | None,
    issuer_key: Any,
    *,
    ca: bool = False,
    names: tuple[str, ...] = (),
    not_before: datetime.datetime | None = None,
    not_after: datetime.datetime | None = None,
) -> x509.Certificate:
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(subject))
        .issuer_name(issuer.subject if issuer else _name(subject))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - _DAY)
        .not_valid_after(not_after or now + 30 * _DAY)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True,
                content_commitment=False, key_encipherment=False, data_encipherment=False,
                key_agreement=False, encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )  # fmt: skip
        builder = builder.add_extension(
            x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
        )
    if issuer is not None:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def _chain(path: Path, key: ec.EllipticCurvePrivateKey, certificate: x509.Certificate) -> Path:
    """``path`` holding ``key`` and ``certificate`` in PEM, as ``load_cert_chain`` reads them."""
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        + pem(certificate)
    )
    return path


@dataclass
class Pki:
    """A CA, the server's TLS certificate for :data:`SERVER_NAMES` and an SNS signing key
    with its certificate, all made for one test session in ``folder``."""

    folder: Path
    ca_file: Path
    server_context: ssl.SSLContext
    signing_key: rsa.RSAPrivateKey
    signing_pem: bytes
    ca: x509.Certificate
    ca_key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, folder: Path) -> Pki:
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("Notifier test CA", ca_key, None, ca_key, ca=True)
        server_key = ec.generate_private_key(ec.SECP256R1())
        server = _certificate(HOST, server_key, ca, ca_key, names=SERVER_NAMES)
        signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        signing = _certificate("sns.amazonaws.com", signing_key, ca, ca_key)
        ca_file = folder / "ca.pem"
        ca_file.write_bytes(pem(ca))
        chain = _chain(folder / "server.pem", server_key, server)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(chain)
        return cls(folder, ca_file, context, signing_key, pem(signing), ca, ca_key)

    def server_chain(self, names: tuple[str, ...]) -> Path:
        """A file with a TLS key and certificate for ``names``, issued by this CA (another
        server the processes that trust :attr:`ca_file` reach: the benchmark's SES)."""
        key = ec.generate_private_key(ec.SECP256R1())
        certificate = _certificate(names[0], key, self.ca, self.ca_key, names=names)
        return _chain(self.folder / f"{names[0]}.pem", key, certificate)

    def signing_certificate(
        self,
        key: Any,
        *,
        not_before: datetime.datetime | None = None,
        not_after: datetime.datetime | None = None,
    ) -> bytes:
        """Another signing certificate, for ``key``, valid between other dates."""
        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = _certificate("Another CA", ca_key, None, ca_key, ca=True)
        return pem(
            _certificate(
                "sns.amazonaws.com", key, ca, ca_key, not_before=not_before, not_after=not_after
            )
        )


def trust(monkeypatch: pytest.MonkeyPatch, ca_file: Path) -> None:
    """Make ``ca_file`` the system's trust store for this test, as an operator would."""
    monkeypatch.setenv("SSL_CERT_FILE", str(ca_file))
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)


# -- messages -------------------------------------------------------------------------------


def string_to_sign(fields: Mapping[str, str]) -> bytes:
    """AWS's string to sign, written from its page ("Verifying the signatures of Amazon SNS
    messages"): each field's name, a newline, its value, a newline, in this order."""
    if fields["Type"] == "Notification":
        names = ["Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"]
    else:
        names = ["Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type"]
    return "".join(f"{n}\n{fields[n]}\n" for n in names if n in fields).encode()


def sign(fields: dict[str, str], key: rsa.RSAPrivateKey, version: str = "2") -> dict[str, str]:
    """``fields`` with ``SignatureVersion`` and ``Signature`` set, signed by ``key``."""
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = key.sign(string_to_sign(fields), padding.PKCS1v15(), algorithm)
    return {
        **fields,
        "SignatureVersion": version,
        "Signature": base64.b64encode(signature).decode(),
    }


def notification(
    message: str = '{"notificationType":"Delivery"}',
    *,
    topic: str = TOPIC,
    subject: str | None = None,
    cert_url: str = CERT_URL,
) -> dict[str, str]:
    """A Notification's fields before signing."""
    fields = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": topic,
        "Message": message,
        "Timestamp": "2026-05-02T00:54:06.655Z",
        "SigningCertURL": cert_url,
        "UnsubscribeURL": f"https://{HOST}/?Action=Unsubscribe&SubscriptionArn={topic}:1",
    }
    if subject is not None:
        fields["Subject"] = subject
    return fields


def confirmation(
    *,
    topic: str = TOPIC,
    kind: str = "SubscriptionConfirmation",
    subscribe_url: str | None = None,
    cert_url: str = CERT_URL,
) -> dict[str, str]:
    """A SubscriptionConfirmation's (or UnsubscribeConfirmation's) fields before signing."""
    token = "2336412f37fb687f5d51e6e2425f004a"
    return {
        "Type": kind,
        "MessageId": "165545c9-2a5c-472c-8df2-7ff2be2b3b1b",
        "Token": token,
        "TopicArn": topic,
        "Message": f"You have chosen to subscribe to the topic {topic}.\n"
        "To confirm the subscription, visit the SubscribeURL included in this message.",
        "SubscribeURL": subscribe_url
        or f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={topic}&Token={token}",
        "Timestamp": "2026-05-02T00:54:06.655Z",
        "SigningCertURL": cert_url,
    }


# -- the server ----------------------------------------------------------------------------


@dataclass
class Seen:
    """One request the server read: its method, ``Host`` header and target."""

    method: str
    host: str
    target: str


@dataclass
class SnsPeer:
    """An HTTPS server on 127.0.0.1 that serves ``files`` (path → body; the signing
    certificate at :data:`CERT_PATH`), answers confirmations, and for chosen paths redirects
    (``redirects``), answers a status (``statuses``), sends a body without a length
    (``chunked``) or trickles its answer a byte at a time (``trickling``). ``seen`` holds every
    request read."""

    pki: Pki
    files: dict[str, bytes] = field(default_factory=dict)
    redirects: dict[str, str] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)
    chunked: set[str] = field(default_factory=set)
    trickling: set[str] = field(default_factory=set)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.files.setdefault(CERT_PATH, self.pki.signing_pem)
        self.stopping = threading.Event()
        self.server = PeerServer(("127.0.0.1", 0), self._handler())
        self.server.socket = self.pki.server_context.wrap_socket(
            self.server.socket, server_side=True
        )

    @property
    def port(self) -> int:
        port: int = self.server.server_address[1]
        return port

    def start(self) -> Self:
        self.server.serve()
        return self

    def stop(self) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def requests_for(self, path: str) -> list[Seen]:
        """The requests read for ``path`` (a target's path, its query left out)."""
        with self.lock:
            return [s for s in self.seen if urlsplit(s.target).path == path]

    def confirmations(self) -> list[Seen]:
        """The GETs of a ``SubscribeURL`` read."""
        with self.lock:
            return [s for s in self.seen if "Action=ConfirmSubscription" in s.target]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(PeerHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                with peer.lock:
                    peer.seen.append(Seen("GET", self.headers.get("Host", ""), self.path))
                path = urlsplit(self.path).path
                if path in peer.trickling:
                    self._trickle()
                elif path in peer.redirects:
                    self._send(302, b"", {"Location": peer.redirects[path]})
                elif path in peer.statuses:
                    self._send(peer.statuses[path], b"no")
                elif "Action=ConfirmSubscription" in self.path:
                    self._send(200, CONFIRMED, {"Content-Type": "text/xml"})
                elif path in peer.files and path in peer.chunked:
                    self._send_chunked(peer.files[path])
                elif path in peer.files:
                    self._send(200, peer.files[path])
                else:
                    self._send(404, b"<Error><Code>NotFound</Code></Error>")

            def _send(self, status: int, body: bytes, headers: Mapping[str, str] = {}) -> None:
                self.send_response(status)
                for name, value in headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _send_chunked(self, body: bytes) -> None:
                self.send_response(200)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(body), 4096):
                    piece = body[start : start + 4096]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

            def _trickle(self) -> None:
                # A header a byte at a time for at most 30 s: only a whole-call deadline ends
                # it sooner (each byte comes well inside any socket timeout).
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                end = time.monotonic() + 30
                while not peer.stopping.wait(0.1) and time.monotonic() < end:
                    self.wfile.write(b"a")

        return Handler


CONFIRMED = (
    b'<ConfirmSubscriptionResponse xmlns="http://sns.amazonaws.com/doc/2010-03-31/">'
    b"<ConfirmSubscriptionResult><SubscriptionArn>" + TOPIC.encode() + b":1</SubscriptionArn>"
    b"</ConfirmSubscriptionResult></ConfirmSubscriptionResponse>"
)


@contextlib.contextmanager
def running(peer: SnsPeer) -> Iterator[SnsPeer]:
    """``peer``, started, and stopped afterwards."""
    peer.start()
    try:
        yield peer
    finally:
        peer.stop()


class _ToLoopback:
    """A urllib3 connection that connects to 127.0.0.1:``loopback_port`` whatever its host,
    the way ``curl --resolve`` does: TLS still checks the certificate for the URL's host, and
    the request still names it."""

    loopback_port = 0
    timeout: Any

    def _new_conn(self) -> socket.socket:
        sock = create_connection(("127.0.0.1", self.loopback_port), self.timeout)
        watch(self, sock)  # under the call's deadline, as every connection of the service
        return sock


# The variable that tells a process started by a test where the SNS server listens (read by
# tests/support/loopback/sitecustomize.py); not a NOTIFIER_ one: the service never reads it.
LOOPBACK_PORT = "TESTS_SNS_LOOPBACK_PORT"
LOOPBACK_PATH = Path(__file__).resolve().parents[1] / "loopback"


def loopback_env(peer: SnsPeer, pki: Pki) -> dict[str, str]:
    """What a process started by a test needs to reach ``peer`` for the SNS hosts: the test's CA
    as its trust store, and its connections to the SNS hosts sent to the peer from its start-up
    (``tests/support/loopback/``)."""
    paths = [str(LOOPBACK_PATH), *filter(None, [os.environ.get("PYTHONPATH")])]
    return {
        "SSL_CERT_FILE": str(pki.ca_file),
        LOOPBACK_PORT: str(peer.port),
        "PYTHONPATH": os.pathsep.join(paths),
    }


def loopback_adapter(
    port: int, *, total: float = 5.0, max_bytes: int = MAX_RESPONSE_BYTES
) -> CertificateAdapter:
    """A :class:`CertificateAdapter` whose connections reach the peer on ``port``."""
    mixin = type("ToLoopback", (_ToLoopback,), {"loopback_port": port})
    adapter = type("LoopbackAdapter", (CertificateAdapter,), {"pools": watched_pools(mixin)})
    made: CertificateAdapter = adapter(total=total, max_bytes=max_bytes)
    return made


# -- AWS's own samples ----------------------------------------------------------------------

AWS_CERTIFICATE = b"""-----BEGIN CERTIFICATE-----
MIIF1zCCBL+gAwIBAgIQB9pYWG3Mi7xej22g9pobJTANBgkqhkiG9w0BAQsFADBG
MQswCQYDVQQGEwJVUzEPMA0GA1UEChMGQW1hem9uMRUwEwYDVQQLEwxTZXJ2ZXIg
Q0EgMUIxDzANBgNVBAMTBkFtYXpvbjAeFw0yMTA5MDcwMDAwMDBaFw0yMjA4MTcy
MzU5NTlaMBwxGjAYBgNVBAMTEXNucy5hbWF6b25hd3MuY29tMIIBIjANBgkqhkiG
9w0BAQEFAAOCAQ8AMIIBCgKCAQEAutFqueT3XgP13udzxE6UpbdjOtVO5DwoMpSM
iDNMnGzF1TYH5/R2LPUOBeTB0SkKnR4kpNcUZhicpGD4aKciz/GEZ6wu65xncfT9
H/KBOQwoXYTuClHwp6fYpGzcGFaFoEYMnijL/o4qmTSd+ukglQUgKpsDw4ofw6rU
m2CttJo+GQSNQ9NfGR1h/0J+zsApkeSYrXRx5wNlu87z8os1C/6PBrUHwt3xXeaf
Xzfwut8aRRYsS8BySOA9DAgLfNHlfdQCjKPXKrG/ussgReyWD6n/HH+j7Uha3xos
TzQqJifcxlTq6MxWdPR6fDaJNvqw6DOE7UjUNxHguXHlVfxhlQIDAQABo4IC6TCC
AuUwHwYDVR0jBBgwFoAUWaRmBlKge5WSPKOUByeWdFv5PdAwHQYDVR0OBBYEFAqz
C+vyouneE7mWWLbi9i0UsWUbMBwGA1UdEQQVMBOCEXNucy5hbWF6b25hd3MuY29t
MA4GA1UdDwEB/wQEAwIFoDAdBgNVHSUEFjAUBggrBgEFBQcDAQYIKwYBBQUHAwIw
OwYDVR0fBDQwMjAwoC6gLIYqaHR0cDovL2NybC5zY2ExYi5hbWF6b250cnVzdC5j
b20vc2NhMWIuY3JsMBMGA1UdIAQMMAowCAYGZ4EMAQIBMHUGCCsGAQUFBwEBBGkw
ZzAtBggrBgEFBQcwAYYhaHR0cDovL29jc3Auc2NhMWIuYW1hem9udHJ1c3QuY29t
MDYGCCsGAQUFBzAChipodHRwOi8vY3J0LnNjYTFiLmFtYXpvbnRydXN0LmNvbS9z
Y2ExYi5jcnQwDAYDVR0TAQH/BAIwADCCAX0GCisGAQQB1nkCBAIEggFtBIIBaQFn
AHYAKXm+8J45OSHwVnOfY6V35b5XfZxgCvj5TV0mXCVdx4QAAAF7vfDVkQAABAMA
RzBFAiEA2XfHuy36aqRFiaL8c3md2mH451go8707+fRE0pEdSRACIE/g5FXTUXUZ
PFcmOhm9TZ+uMY1i4CIQ/CKVWln6C3t+AHYAUaOw9f0BeZxWbbg3eI8MpHrMGyfL
956IQpoN/tSLBeUAAAF7vfDVjAAABAMARzBFAiBF1MhhFP0+FQt3daDFfMYoWwnr
muTInrjNpwfzlvQBugIhAPYadFzr+LaxSJoiZEbEHBvTts7bT0M3eCQONA2O7w6n
AHUAQcjKsd8iRkoQxqE6CUKHXk4xixsD6+tLx2jwkGKWBvYAAAF7vfDVdAAABAMA
RjBEAiAtPapmFAuA71ih4NoSd5hJelzAltNQpxDMcDfDyHyU8gIgWxmaa6+2KbBu
9xdv379zvnJACFR7jc+4asl08Dn4aagwDQYJKoZIhvcNAQELBQADggEBAA54QX0u
oFWXfMmv02CGZv4NWo5TapyeeixQ2kKpZHRdVZjxZrw+hoF6HD7P3kGjH8ztyJll
tDxB0qgMltbPhQdScwhA6iTgoaBYqEUC/VHKd4PmmPT6yIsM36NBZVmkGlzl5uNo
/dBgBaG0SsVJnhr5zro3c2quC7n6fVGEZhf/UgQwRnnvThnvbNKguglDMq4uEqv8
njKyleht+glkcmXO0m9qLKt6BOS0amy6U2GlAwRn0Wx02ndJtnRCSC6kPuRWK/SQ
FEjB7gCK4hdKaAOuWdZpI55vF6ifOeM8toC3g7ofO8qLTnJupAG+ZitY5J3cvHWr
HqOUdKigPDHYLRo=
-----END CERTIFICATE-----
"""

AWS_CERT_PATH = "/SimpleNotificationService-7ff5318490ec183fbaddaa2a969abfda.pem"
_AWS_TOPIC = "arn:aws:sns:us-east-2:295079676684:publish-and-verify-"
_AWS_CERT_URL = f"https://sns.us-east-2.amazonaws.com{AWS_CERT_PATH}"


def _aws(
    topic: str, message_id: str, at: str, version: str, signature: str, **more: str
) -> dict[str, str]:
    return {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": _AWS_TOPIC + topic,
        **more,
        "Message": "Hello world",
        "Timestamp": at,
        "SignatureVersion": version,
        "Signature": signature,
        "SigningCertURL": _AWS_CERT_URL,
    }


# SignatureVersion 1 and 2, each without and with a Subject.
AWS_MESSAGES = [
    _aws(
        "892f85fe-4836-424d-8188-ab85bef0f362",
        "792cda85-518f-5dd3-9163-81d851212f3a",
        "2022-07-28T21:23:58.317Z",
        "1",
        "ghtf+deOBAzHJJZ6s6CdRLfTQAlcGzq9naoFM1wi0CJiq//uVRuZnamrkWNF0fhouMFvuLVRwcz8PZLUMSfnmd5VpdTKpTyiKmy1qJAZXma0w+yi7G+I33hD1Jyk1Nbym2n0kqp3fVu2aoooiN2ZeLAT2bH0/BtjLSfN1yAOKNoprco4qV9gGUZinXJdj9a1YdNhDR2jKi33ldlsVtEXAtiaDklGEk7DgRKX38GerBPiLg3FdtgY6KC7cdeGpU/dGK+4hjc83Ive1HoFkAwqhpgInM2sMytBosoiXfCmOKmU4xeGD0gHDNZTlJUJQDlzw8Eag0H9f/5zXF9d3uy0YQ==",
    ),
    _aws(
        "62674b1d-4295-426b-88e7-5fb75652a04e",
        "17dea24b-55c2-540b-8362-f916557af765",
        "2022-07-28T21:24:08.324Z",
        "2",
        "CXVqp9PfZAL+4JHS3Zxo1PFbQsvnOjvmYhtIf17TWpwc+iIVas8kZ8GopuzVzVMdatE7rCl/O4P91Zp05Dwz8lk8dLhfp8gSu3Njlzxlyrmzo9x3va3Jb7zFnedgS2GKnZWHGBdwTXho+TosNUE+3e10OMSlwN5XGDwX7+R3WL+rn+AXmFAqp3alg27sYa55h1dLE9cGszGPjScPdtF3BmZsUDMx9wSdNKsCk+vSvE8yBjnCmUl7laSFj3LzPVrlSwgNYCF3kYnNAkah7NplK4SFhJYLwS0HCVCQJKa8rVbQLf9cBTu60U402mrgy0bN8xWoyimzbYbrOMJjalqkUg==",
    ),
    _aws(
        "6e11fed2-fcdf-4c52-9dc4-36ef43f37f84",
        "11405cc3-9ac7-56d5-b45d-079e8f7a8edf",
        "2022-07-28T22:53:49.654Z",
        "1",
        "AItkS26d8yvnIKJevdirIPW7eM/yKbZy3/CF2EreCHmXWB3etWaV5Fb7SYpGABMpugpDZzNyGY1wCVWaopDoQ+7Q/kI2TpDu8bw1eExbi8U3kduvc/2m2fIrI4gDEY8/v3nzoLcr8pPodqMzrX6SzQou4klfaqbNK+rFmH0LVf2Q1VyOROODoSXmo4jg2Yu12jfxccBl96Drr/ihq4MJ4OcrWh6UzXXlVYjJHx2Ui4anNwNEb+Z4C2CAF1DjQUbhDtaoajDBPY+4d9C1OwbqwQpXsd6tyVcI9nFyEsVK8lfnAV+/3GZQcdXHbIUYBRGcBa4X5TlWJku5nDH2ERtHHw==",
        Subject="Hello world",
    ),
    _aws(
        "530b26da-0687-4fe4-9f71-780bad3181e2",
        "4504e649-d933-5aa9-8199-bd14ccf05f0b",
        "2022-07-28T22:53:55.086Z",
        "2",
        "cETcSvmmkt+My05qCLKexyl0+RyG83mSryKPqTfS+tYcxDJWVcjPJAr+qdpElzVaBl1aTGYVWMY64i9JqZ/JES8pylNj8LGvdhuNQKO59/WCoIimZAsNhn0xEgOeeDU+W/0BU4sdpCGMNjo0S/FuIiWaRe4E0YWRVrxeQevaQ70euDdfWgd5v1eCKQz8b367b9XBmMztL/CWUFI6YaKK/MV21eyvJe3Y7CtVYiOKEYiAZnAEkynK7gUGO5TsgDjGNYhj6U3xYsWgI03bmioSl7kdFSUj+AZ7ugas5fghqxgoDsdfqsjMYKRm5KKHQWsgzI619yIzpNKUiSMHxdZXpQ==",
        Subject="Hello world",
    ),
]

"""Amazon SNS messages posted to us over HTTP(S), verified as AWS documents, and subscriptions
confirmed only for our own topics.

SNS signs a JSON envelope (AWS, "Verifying the signatures of Amazon SNS messages" and "Parsing
message formats"): ``Signature`` is the base64 RSA PKCS#1 v1.5 signature, with SHA-1 for
``SignatureVersion`` 1 and SHA-256 for 2, of a string made of some of the envelope's fields, in
this order, each as ``<name>\\n<value>\\n`` (a newline after the last value too):

- ``Notification``: Message, MessageId, Subject (only when the envelope has one), Timestamp,
  TopicArn, Type;
- ``SubscriptionConfirmation`` and ``UnsubscribeConfirmation``: Message, MessageId,
  SubscribeURL, Timestamp, Token, TopicArn, Type.

The key is in the X.509 certificate at ``SigningCertURL``, trusted only because it comes over
https (the system's trust store; ``SSL_CERT_FILE`` honoured) from an SNS host: the URL must be
``https://<host>/SimpleNotificationService-<name>.pem`` exactly, ``<host>`` matching one of the
host patterns (``*`` one DNS label; by default ``sns.*.amazonaws.com`` and
``sns.*.amazonaws.com.cn``), with no user, port, query or fragment, and that label the region of
the message's topic (``arn:aws:sns:us-east-2:…`` signs from ``sns.us-east-2.amazonaws.com``):
any label would take ``sns.s3.amazonaws.com`` or ``sns.s3-us-west-2.amazonaws.com``, the S3
bucket ``sns`` whoever holds it serves over https, certificates of its own making included
(nathforge/validatesns#6; "Exploiting Improper Validation of Amazon SNS SigningCertURL"). It is fetched with no
redirect, at most :data:`MAX_RESPONSE_BYTES`, within a whole-call deadline
(:mod:`notifier.deadline`), then kept (a bounded number of URLs; one fetch however many messages
ask at once) and checked for its validity dates at each use.

A valid signature proves only that *some* SNS topic sent the message: anyone can make a topic
and subscribe our URL to it (PostHog #61644). So the ``TopicArn`` must be one of ours before
anything else is done, the network included, and a ``SubscriptionConfirmation`` is confirmed
(a GET of its ``SubscribeURL``, under the same host rule, naming the same topic) only after
that and its signature. A subscription with raw message delivery on posts the bare message,
with nothing signed: it is refused, saying so (listmonk #498).

Tests reach a local HTTPS server through the one seam, ``adapter``: a :class:`CertificateAdapter`
whose connections go to loopback, with the test's CA in ``SSL_CERT_FILE``. The URL and host
rules above are checked before any adapter sees a URL, and the adapter checks the server's
certificate whatever ``verify`` a session or the environment asks for.

::

    NotAllowed (403)            notifier.errors: the API layer answers it
    └── SnsRefused              unsigned, badly signed, a certificate or confirmation URL off the
        │                       rules, a topic not ours: nothing was done; retrying cannot help
        └── RawDelivery         the subscription has raw message delivery on: turn it off
    Unavailable (503)           notifier.errors
    └── SnsUnavailable          the certificate or the confirmation could not be had from AWS
                                now (unreachable, slow, 5xx): SNS retries a delivery answered 5xx
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

import requests
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from notifier.deadline import DeadlineAdapter, session
from notifier.errors import NotAllowed, Unavailable

log = logging.getLogger(__name__)

DEFAULT_CERT_HOSTS = ("sns.*.amazonaws.com", "sns.*.amazonaws.com.cn")
# A signing certificate is under 2 KiB and a confirmation's answer under 1 KiB.
MAX_RESPONSE_BYTES = 64 * 1024
MIN_RSA_BITS = 2048

NOTIFICATION = "Notification"
SUBSCRIPTION_CONFIRMATION = "SubscriptionConfirmation"
UNSUBSCRIBE_CONFIRMATION = "UnsubscribeConfirmation"

_CONFIRMATION_FIELDS = (
    "Message", "MessageId", "SubscribeURL", "Timestamp", "Token", "TopicArn", "Type",
)  # fmt: skip
# The fields signed, in the order signed; "Subject" only when the envelope has one.
SIGNED_FIELDS: Mapping[str, tuple[str, ...]] = {
    NOTIFICATION: ("Message", "MessageId", "Subject", "Timestamp", "TopicArn", "Type"),
    SUBSCRIPTION_CONFIRMATION: _CONFIRMATION_FIELDS,
    UNSUBSCRIBE_CONFIRMATION: _CONFIRMATION_FIELDS,
}
OPTIONAL_FIELDS = frozenset({"Subject"})
ENVELOPE_FIELDS = ("SignatureVersion", "Signature", "SigningCertURL")
HASHES: Mapping[str, Callable[[], hashes.HashAlgorithm]] = {"1": hashes.SHA1, "2": hashes.SHA256}

_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
# Compared with the whole URL as written, so no parser can read another host or path into it:
# no user (@), port (:), query (?) or fragment (#), nothing but the certificate's file name.
_CERT_URL = re.compile(r"https://([^/?#@:\s\\]+)(/SimpleNotificationService-[A-Za-z0-9._-]+\.pem)")
_CONFIRM_URL = re.compile(r"https://([^/?#@:\s\\]+)/\?([A-Za-z0-9%&=:._~+-]+)")


class SnsRefused(NotAllowed):
    """The message is not one to act on (unsigned, badly signed, off the rules, not our topic);
    nothing was done and retrying cannot help."""


class RawDelivery(SnsRefused):
    """The subscription posts the bare message (raw message delivery on): nothing is signed."""

    def __init__(self) -> None:
        super().__init__(
            "raw message delivery is on for this SNS subscription: nothing in the body is "
            "signed; turn RawMessageDelivery off (the subscription's attributes)"
        )


class SnsUnavailable(Unavailable):
    """AWS could not be asked now (the certificate, a confirmation): retrying later may help."""


@dataclass(frozen=True)
class SnsMessage:
    """A verified SNS message from an allowed topic.

    ``message`` is what was published (an SES event is JSON in it); ``subject`` is None when
    the envelope has none; ``subscribe_url`` is set for the two confirmation types.
    """

    type: str
    message_id: str
    topic_arn: str
    timestamp: str
    message: str
    subject: str | None = None
    subscribe_url: str | None = None


def host_pattern(patterns: Iterable[str], star: str | None = None) -> re.Pattern[str]:
    """One regex for host ``patterns`` (``*`` one DNS label, or the label ``star`` when given;
    the rest literal labels, lower case); ValueError naming a pattern that is not one."""
    alternatives = []
    any_label = _LABEL if star is None else re.escape(star)
    for pattern in patterns:
        labels = pattern.strip().split(".")
        if len(labels) < 2 or any(
            label != "*" and not re.fullmatch(_LABEL, label) for label in labels
        ):
            raise ValueError(
                f"{pattern!r} is not a host pattern: lower-case DNS labels and * (one label)"
            )
        alternatives.append(
            r"\.".join(any_label if label == "*" else re.escape(label) for label in labels)
        )
    if not alternatives:
        raise ValueError("no host pattern")
    return re.compile("|".join(f"(?:{a})" for a in alternatives))


def region(topic_arn: str) -> str:
    """The region of an SNS topic's ARN (``arn:<partition>:sns:<region>:<account>:<name>``)."""
    return topic_arn.split(":")[3] if topic_arn.count(":") >= 5 else ""


def string_to_sign(fields: Mapping[str, str]) -> bytes:
    """What SNS signed for an envelope of ``fields`` (its ``Type`` one of the three)."""
    names = SIGNED_FIELDS[fields["Type"]]
    text = "".join(f"{name}\n{fields[name]}\n" for name in names if name in fields)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, which json.loads lets through
        raise SnsRefused("the SNS message is not UTF-8 text") from None


def check_cert_url(url: str, hosts: re.Pattern[str]) -> None:
    """Refuse a ``SigningCertURL`` that is not an SNS host's certificate file over https."""
    found = _CERT_URL.fullmatch(url)
    if found is None or not hosts.fullmatch(found[1]):
        raise SnsRefused(
            "the SigningCertURL is not https://<an SNS host>/SimpleNotificationService-….pem"
        )


def check_subscribe_url(url: str, hosts: re.Pattern[str], topic_arn: str) -> None:
    """Refuse a ``SubscribeURL`` that is not an SNS host's ConfirmSubscription of ``topic_arn``."""
    found = _CONFIRM_URL.fullmatch(url)
    if found is None or not hosts.fullmatch(found[1]):
        raise SnsRefused(
            "the SubscribeURL is not https://<an SNS host>/?Action=ConfirmSubscription…"
        )
    query = parse_qs(found[2], keep_blank_values=True)
    if (
        query.get("Action") != ["ConfirmSubscription"]
        or query.get("TopicArn") != [topic_arn]
        or len(query.get("Token", ())) != 1
    ):
        raise SnsRefused("the SubscribeURL does not confirm the message's own topic")


class _TooLarge(Exception):
    """An answer went past the adapter's ``max_bytes``."""


class _Capped:
    """A urllib3 response, as requests reads it, that stops past ``limit`` bytes.

    requests reads a body through the raw response's ``stream()`` (``Response.iter_content``);
    the size-cap tests of a body without a length fail should it read another way.
    """

    def __init__(self, raw: Any, limit: int) -> None:
        self._raw = raw
        self._limit = limit
        self._read = 0

    def stream(self, amt: int = 2**16, decode_content: bool | None = None) -> Iterator[bytes]:
        for chunk in self._raw.stream(amt, decode_content=decode_content):
            self._read += len(chunk)
            if self._read > self._limit:
                self._raw.close()  # the connection is not reused with an answer half read
                raise _TooLarge(f"more than {self._limit} bytes")
            yield chunk

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


class CertificateAdapter(DeadlineAdapter):
    """The adapter SNS's certificates and confirmations are fetched through: each call within
    ``total`` seconds, its answer at most ``max_bytes``, the server's certificate always
    checked against the system's trust store (``SSL_CERT_FILE`` honoured), never a session's
    or ``REQUESTS_CA_BUNDLE``'s bundle and never not at all."""

    def __init__(
        self, *, total: float, max_connections: int = 4, max_bytes: int = MAX_RESPONSE_BYTES
    ) -> None:
        self.max_bytes = max_bytes
        super().__init__(total=total, max_connections=max_connections)

    def build_connection_pool_key_attributes(
        self, request: requests.PreparedRequest, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host, _ = super().build_connection_pool_key_attributes(request, True, None)
        return host, {"cert_reqs": "CERT_REQUIRED"}

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # requests would set certifi's bundle here; with none, urllib3 loads the system's.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = None
        conn.ca_cert_dir = None

    def build_response(self, req: requests.PreparedRequest, resp: Any) -> requests.Response:
        response = super().build_response(req, resp)
        length = response.headers.get("Content-Length", "")
        if length.isdigit() and int(length) > self.max_bytes:
            resp.close()
            raise _TooLarge(f"Content-Length {length}, more than {self.max_bytes} bytes")
        # Read by DeadlineAdapter.send within the deadline; a body without a length is cut too.
        response.raw = _Capped(resp, self.max_bytes)
        return response


@dataclass(frozen=True)
class _Certificate:
    key: rsa.RSAPublicKey
    not_before: datetime
    not_after: datetime


def _now() -> datetime:
    return datetime.now(UTC)


class SnsVerifier:
    """Verifies SNS messages for ``topic_arns`` and confirms their subscriptions; thread-safe.

    ``cert_hosts``: host patterns a certificate or confirmation URL may name
    (NOTIFIER_SNS_CERT_HOSTS). ``timeout``: seconds for each fetch from AWS, in all.
    ``cache_size``: certificate URLs kept. ``adapter`` and ``clock`` are for tests (a local
    server; a certificate that has expired since AWS signed with it).
    """

    def __init__(
        self,
        *,
        topic_arns: Collection[str],
        cert_hosts: Iterable[str] = DEFAULT_CERT_HOSTS,
        timeout: float = 5.0,
        cache_size: int = 16,
        adapter: CertificateAdapter | None = None,
        clock: Callable[[], datetime] = _now,
    ) -> None:
        self._topics = frozenset(topic_arns)
        # Each topic's hosts: the patterns with ``*`` its region (see the module's docstring).
        patterns = tuple(cert_hosts)
        host_pattern(patterns)  # a pattern that is not one is a ValueError, topics or none
        self._hosts = {arn: host_pattern(patterns, region(arn)) for arn in self._topics}
        self._session = session(adapter or CertificateAdapter(total=timeout))
        self._cache_size = cache_size
        self._clock = clock
        self._lock = threading.Lock()
        self._certificates: OrderedDict[str, _Certificate] = OrderedDict()
        self._fetching: dict[str, Future[_Certificate]] = {}

    def receive(self, body: bytes, headers: Mapping[str, str] | None = None) -> SnsMessage:
        """Verify a posted message and, for a ``SubscriptionConfirmation``, confirm it."""
        message = self.verify(body, headers)
        if message.type == SUBSCRIPTION_CONFIRMATION:
            self.confirm(message)
        return message

    def verify(self, body: bytes, headers: Mapping[str, str] | None = None) -> SnsMessage:
        """The message in ``body`` (as posted, with the request's ``headers``), once its topic
        is allowed and its signature verified; SnsRefused or SnsUnavailable otherwise."""
        lowered = {name.lower(): value for name, value in (headers or {}).items()}
        if lowered.get("x-amz-sns-rawdelivery", "").strip().lower() == "true":
            raise RawDelivery()
        fields = _envelope(body)
        if fields["TopicArn"] not in self._topics:
            raise SnsRefused(f"the SNS topic {fields['TopicArn'][:256]!r} is not one of ours")
        signature = _signature(fields["Signature"])
        check_cert_url(fields["SigningCertURL"], self._hosts[fields["TopicArn"]])
        certificate = self._certificate(fields["SigningCertURL"])
        algorithm = HASHES[fields["SignatureVersion"]]()
        try:
            certificate.key.verify(signature, string_to_sign(fields), padding.PKCS1v15(), algorithm)
        except InvalidSignature:
            raise SnsRefused("the SNS message's signature does not verify") from None
        return SnsMessage(
            type=fields["Type"],
            message_id=fields["MessageId"],
            topic_arn=fields["TopicArn"],
            timestamp=fields["Timestamp"],
            message=fields["Message"],
            subject=fields.get("Subject"),
            subscribe_url=fields.get("SubscribeURL"),
        )

    def confirm(self, message: SnsMessage) -> None:
        """Confirm the subscription of a verified ``SubscriptionConfirmation`` (a GET of its
        ``SubscribeURL``); SnsRefused if it is not one of ours or AWS refuses it."""
        if message.type != SUBSCRIPTION_CONFIRMATION or message.subscribe_url is None:
            raise SnsRefused("not a SubscriptionConfirmation")
        if message.topic_arn not in self._topics:
            raise SnsRefused(f"the SNS topic {message.topic_arn[:256]!r} is not one of ours")
        check_subscribe_url(
            message.subscribe_url, self._hosts[message.topic_arn], message.topic_arn
        )
        self._get(message.subscribe_url, "the subscription's confirmation")
        log.info("confirmed the SNS subscription to %s", message.topic_arn)

    def close(self) -> None:
        """Close the kept-alive connections; the verifier may be used again afterwards."""
        self._session.close()

    def _certificate(self, url: str) -> _Certificate:
        """The certificate at ``url``, valid now: kept, or fetched once however many callers
        ask for it at the same time."""
        with self._lock:
            found = self._certificates.get(url)
            pending = None if found is not None else self._fetching.get(url)
            if found is not None:
                self._certificates.move_to_end(url)
            elif pending is None:
                self._fetching[url] = Future()
        if found is None:
            found = self._fetch(url) if pending is None else pending.result()
        now = self._clock()
        if not found.not_before <= now <= found.not_after:
            raise SnsRefused(
                f"the SNS signing certificate is valid from {found.not_before:%Y-%m-%d} to "
                f"{found.not_after:%Y-%m-%d}, not now"
            )
        return found

    def _fetch(self, url: str) -> _Certificate:
        """Fetch the certificate at ``url``, keep it, and hand it (or the error) to whoever
        waits for it."""
        try:
            certificate = _read_certificate(self._get(url, "the SNS signing certificate"))
        except BaseException as e:
            with self._lock:
                self._fetching.pop(url).set_exception(e)
            raise
        with self._lock:
            self._certificates[url] = certificate
            while len(self._certificates) > self._cache_size:
                self._certificates.popitem(last=False)
            self._fetching.pop(url).set_result(certificate)
        log.info("fetched the SNS signing certificate %s", url)
        return certificate

    def _get(self, url: str, what: str) -> bytes:
        """GET ``url`` with no redirect: its body if 200, else SnsRefused or SnsUnavailable."""
        try:
            response = self._session.get(url, allow_redirects=False)
        except _TooLarge as e:
            raise SnsRefused(f"{what} is too large: {e}") from None
        except requests.RequestException as e:
            raise SnsUnavailable(f"{what} could not be fetched: {type(e).__name__}: {e}") from e
        status = response.status_code
        if status == 200:
            return response.content
        if status in (408, 429) or status >= 500:
            raise SnsUnavailable(f"{what} could not be fetched: HTTP {status}")
        if 300 <= status < 400:
            raise SnsRefused(f"{what} redirects (HTTP {status}): redirects are not followed")
        raise SnsRefused(f"{what} was refused: HTTP {status}")


def _envelope(body: bytes) -> dict[str, str]:
    """The signed envelope's fields, each a string; SnsRefused (RawDelivery) otherwise."""
    try:
        document = json.loads(body, object_pairs_hook=_no_repeats)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise SnsRefused(
            "the body is not an SNS message (a JSON envelope); if raw message delivery is on "
            "for the subscription, turn it off"
        ) from None
    if not isinstance(document, dict):
        raise SnsRefused("the body is not an SNS message (a JSON object)")
    if "Type" not in document and "Signature" not in document:
        raise RawDelivery()
    kind = document.get("Type")
    if not isinstance(kind, str) or kind not in SIGNED_FIELDS:
        raise SnsRefused("the SNS message's Type is not one SNS sends to HTTP(S) endpoints")
    names = (*SIGNED_FIELDS[kind], *ENVELOPE_FIELDS)
    missing = [n for n in names if n not in document and n not in OPTIONAL_FIELDS]
    if missing:
        raise SnsRefused(f"the SNS message lacks {', '.join(missing)}")
    fields = {n: document[n] for n in names if n in document}
    if not all(isinstance(value, str) for value in fields.values()):
        raise SnsRefused("the SNS message has a field that is not a string")
    if fields["SignatureVersion"] not in HASHES:
        raise SnsRefused("the SNS message's SignatureVersion is neither 1 nor 2")
    return fields


def _no_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose names are all different: a name given twice could be read two ways
    by two parsers, the signature checked over one and the other acted on."""
    found = dict(pairs)
    if len(found) != len(pairs):
        raise ValueError("a name is repeated")
    return found


def _signature(text: str) -> bytes:
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SnsRefused("the SNS message's Signature is not base64") from None


def _read_certificate(pem: bytes) -> _Certificate:
    """The RSA key and validity dates of a PEM certificate; SnsRefused if it is not one."""
    try:
        certificate = x509.load_pem_x509_certificate(pem)
    except ValueError:
        raise SnsRefused("the SigningCertURL does not hold a PEM certificate") from None
    key = certificate.public_key()
    if not isinstance(key, rsa.RSAPublicKey) or key.key_size < MIN_RSA_BITS:
        raise SnsRefused(f"the SNS signing certificate's key is not RSA of {MIN_RSA_BITS}+ bits")
    return _Certificate(key, certificate.not_valid_before_utc, certificate.not_valid_after_utc)

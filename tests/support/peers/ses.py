"""A local Amazon SES (API v2 ``SendEmail``, REST-JSON) that checks what boto3 sends as SES does.

Each request's Signature Version 4 is checked (:mod:`tests.support.peers.sigv4`: the key, the
region, the service ``ses``, the clock, the signature over the method, path, signed headers and
the body), then its JSON as the service model shapes it (botocore's
``data/sesv2/2019-09-27/service-2.json``, ``SendEmailRequest``): only its members, raw content
(the only kind Notifier sends) in base64, 1 to 50 recipients, message tags of letters, digits,
``_`` and ``-``, a configuration set that exists, a sender whose address or domain is verified,
and the raw message as SES takes it (headers and a body apart, a From, lines of at most 1,000
characters). Then planned refusals for a recipient, and a ``MessageId``.

What it takes is in ``sent``: the raw message as it came, and as SES sends it on (``delivered``:
SES sets its own Message-ID and Date). Errors answer as SES's do: the code in
``x-amzn-ErrorType``, ``{"message": …}`` in the body. ``tests/unit/test_ses_peer.py`` holds it
to requests boto3 makes itself.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parseaddr
from typing import Any

from notifier.providers.ses import SesMailProvider, SesSettings
from tests.support.peers.http_peer import Answer, MailPeer, Reply, Request
from tests.support.peers.sigv4 import Refusal, verify

ACCESS_KEY_ID = "AKIASESTESTKEY000001"
SECRET_ACCESS_KEY = "ses-test-secret-access-key-000000000000"
REGION = "eu-west-1"
CONFIGURATION_SET = "notifier-events"
PATH = "/v2/email/outbound-emails"
MEMBERS = {
    "FromEmailAddress", "FromEmailAddressIdentityArn", "Destination", "ReplyToAddresses",
    "FeedbackForwardingEmailAddress", "FeedbackForwardingEmailAddressIdentityArn", "Content",
    "EmailTags", "ConfigurationSetName", "EndpointId", "TenantName", "ListManagementOptions",
}  # fmt: skip
DESTINATION = ("ToAddresses", "CcAddresses", "BccAddresses")
_TAG = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
_ASCII_ADDRESS = re.compile(r"^[\x21-\x7e]+@[A-Za-z0-9.-]+$")


THROTTLED = Answer(429, "TooManyRequestsException", "Too many requests have been made.")
QUOTA = Answer(400, "LimitExceededException", "Maximum sending rate exceeded.")
UNAVAILABLE = Answer(503, "ServiceUnavailable", "Service is unavailable. Try again later.")
PAUSED = Answer(
    400, "SendingPausedException",
    "The message can't be sent because the account's ability to send email is currently paused.",
)  # fmt: skip
REJECTED = Answer(400, "MessageRejected", "Illegal address")
UNVERIFIED = Answer(
    400, "MessageRejected",
    "Email address is not verified. The following identities failed the check in region "
    "EU-WEST-1: noreply@example.com",
)  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """A mail SES took: its id, the request's parts, the raw message as it came and as SES sends
    it on (its own Message-ID and Date)."""

    message_id: str
    destination: dict[str, list[str]]
    tags: dict[str, str]
    configuration_set: str | None
    raw: bytes
    delivered: bytes

    @property
    def recipients(self) -> list[str]:
        return [a for field in DESTINATION for a in self.destination.get(field, [])]


class FakeSes(MailPeer[Sent]):
    """SES API v2 on 127.0.0.1; ``sent`` holds what it took, ``refused`` what it did not."""

    def __init__(
        self,
        *,
        identities: tuple[str, ...] = ("example.com",),
        configuration_sets: tuple[str, ...] = (CONFIGURATION_SET,),
    ) -> None:
        super().__init__()
        self.secrets = {ACCESS_KEY_ID: SECRET_ACCESS_KEY}
        self.identities = set(identities)  # verified addresses and domains
        self.configuration_sets = set(configuration_sets)
        self.refused: list[tuple[int, str, str]] = []
        self.clock_offset = 0.0  # seconds added to the server's clock

    def answer(self, request: Request) -> Reply:
        try:
            now = datetime.fromtimestamp(time.time() + self.clock_offset, UTC)
            verify(request.method, request.path, request.headers, request.body,
                   secrets=self.secrets, region=REGION, service="ses", now=now)  # fmt: skip
            if request.method != "POST" or request.path != PATH:
                raise Refusal(404, "UnknownOperationException", "Unknown operation")
            return self._send_email(_json(request.body))
        except Refusal as e:
            with self.lock:
                self.refused.append((e.status, e.code, e.message))
            return Reply(
                e.status, {"message": e.message},
                headers={"x-amzn-ErrorType": e.code, "x-amzn-RequestId": str(uuid.uuid4())},
            )  # fmt: skip

    def _send_email(self, body: dict[str, Any]) -> Reply:
        unknown = sorted(set(body) - MEMBERS)
        if unknown:
            raise Refusal(400, "BadRequestException", f"Unknown members: {', '.join(unknown)}")
        raw = _raw(body.get("Content"))
        destination = _destination(body.get("Destination"))
        tags = _tags(body.get("EmailTags", []))
        configuration_set = body.get("ConfigurationSetName")
        if configuration_set is not None and configuration_set not in self.configuration_sets:
            raise Refusal(
                404, "NotFoundException", f"Configuration set <{configuration_set}> does not exist."
            )
        head = _headers(raw)
        sender = parseaddr(head.get("from", ""))[1]
        if sender.lower() not in self.identities and (
            sender.rpartition("@")[2].lower() not in self.identities
        ):
            raise Refusal(
                400, "MessageRejected",
                "Email address is not verified. The following identities failed the check in "
                f"region {REGION.upper()}: {sender}",
            )  # fmt: skip
        planned = self.planned(next(a for f in DESTINATION for a in destination.get(f, [])))
        if planned is not None:
            raise Refusal(planned.status, planned.code, planned.message)
        message_id = f"0102{uuid.uuid4().hex[:12]}-{uuid.uuid4()}-000000"
        sent = Sent(
            message_id, destination, tags, configuration_set, raw, _as_ses_sends(raw, message_id)
        )
        with self.lock:
            self.sent.append(sent)
        return Reply(200, {"MessageId": message_id})


def _json(body: bytes) -> dict[str, Any]:
    try:
        found = json.loads(body)
    except ValueError:
        raise Refusal(400, "SerializationException", "the body is not JSON") from None
    if not isinstance(found, dict):
        raise Refusal(400, "SerializationException", "the body is not an object")
    return found


def _raw(content: Any) -> bytes:
    """The raw message of ``Content`` (``{"Raw": {"Data": <base64>}}``), checked as SES does."""
    if not isinstance(content, dict) or set(content) != {"Raw"} or set(content["Raw"]) != {"Data"}:
        raise Refusal(
            400, "BadRequestException", "Content: one of Simple, Raw, Template (Raw here)"
        )
    try:
        raw = base64.b64decode(content["Raw"]["Data"], validate=True)
    except (binascii.Error, TypeError):
        raise Refusal(400, "SerializationException", "Raw.Data is not base64") from None
    if b"\r\n\r\n" not in raw:
        raise Refusal(400, "MessageRejected", "The message has no header and body parts")
    # RFC 5321's 1,000 characters a line, CRLF included (RawMessage's rules).
    if any(len(line) > 998 for line in raw.split(b"\r\n")):
        raise Refusal(400, "MessageRejected", "Message contains a line longer than 1000 characters")
    if "from" not in _headers(raw):
        raise Refusal(400, "MessageRejected", "Missing required header 'From'.")
    return raw


def _destination(given: Any) -> dict[str, list[str]]:
    if not isinstance(given, dict) or set(given) - set(DESTINATION):
        raise Refusal(
            400, "BadRequestException", "Destination: ToAddresses, CcAddresses, BccAddresses"
        )
    addresses = [a for field in DESTINATION for a in given.get(field, [])]
    if not 1 <= len(addresses) <= 50:
        raise Refusal(
            400, "MessageRejected", f"Recipient count must be 1 to 50, not {len(addresses)}"
        )
    for address in addresses:
        if not isinstance(address, str) or not _ASCII_ADDRESS.match(address):
            # SES takes no SMTPUTF8: a local part of 7-bit ASCII, a domain in Punycode.
            raise Refusal(400, "BadRequestException", f"Illegal address: {address!r}")
    return {field: list(given[field]) for field in DESTINATION if field in given}


def _tags(given: Any) -> dict[str, str]:
    if not isinstance(given, list):
        raise Refusal(400, "SerializationException", "EmailTags is a list")
    tags = {}
    for tag in given:
        if not isinstance(tag, dict) or set(tag) != {"Name", "Value"}:
            raise Refusal(400, "BadRequestException", "A tag is {Name, Value}")
        if not (_TAG.match(str(tag["Name"])) and _TAG.match(str(tag["Value"]))):
            raise Refusal(400, "BadRequestException", f"Invalid tag: {tag!r}")
        tags[tag["Name"]] = tag["Value"]
    return tags


def _headers(raw: bytes) -> dict[str, str]:
    """The header section's fields, lower-case names, unfolded (the first of a name)."""
    head = raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
    found: dict[str, str] = {}
    for field in re.split(r"\r\n(?![ \t])", head):
        name, _, value = field.partition(":")
        found.setdefault(name.strip().lower(), " ".join(value.split()))
    return found


def _as_ses_sends(raw: bytes, message_id: str) -> bytes:
    """``raw`` with SES's own Message-ID and Date (the Developer Guide, "Amazon SES header
    fields"): the bytes a recipient gets."""
    now = email.utils.formatdate(usegmt=True).encode()
    for name, value in ((b"Message-ID", f"<{message_id}@email.amazonses.com>".encode()),
                        (b"Date", now)):  # fmt: skip
        raw = re.sub(
            rb"(?mi)^" + name + rb":[^\r]*\r\n(?:[ \t][^\r]*\r\n)*",
            lambda _: name + b": " + value + b"\r\n",  # noqa: B023 (used at once)
            raw,
            count=1,
        )
    return raw


def provider(endpoint: str, **kw: Any) -> SesMailProvider:
    """The adapter with the fake's credentials, region and configuration set; ``kw`` overrides
    them, and ``max_connections`` and ``dkim`` are the adapter's own."""
    options = {name: kw.pop(name) for name in ("max_connections", "dkim") if name in kw}
    values: dict[str, Any] = {
        "region": REGION, "access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY,
        "configuration_set": CONFIGURATION_SET, "endpoint_url": endpoint, "timeout": 5, **kw,
    }  # fmt: skip
    return SesMailProvider(SesSettings(**values), **options)

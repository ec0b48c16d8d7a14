"""A local SendGrid v3 Mail Send (``POST /v3/mail/send``) that checks a body as SendGrid does.

The key (``Authorization: Bearer <key>``, 401 otherwise), then the body, strictly, from SendGrid's
"Mail Send" reference and its "Errors" page: only the documented members; one to 1,000
personalizations, each with ``to``; 1,000 recipients at most; each address once across to, cc
and bcc; ``{"email"[, "name"]}`` objects with a valid address; a From; a subject (or one in each
personalization); content values of one character or more, text/plain first and then
text/html; headers and custom_args of strings, none of the reserved headers. A From whose
domain is not a verified sender identity is 403. Then planned refusals for a recipient, then 202
with an ``X-Message-Id`` and no body. Errors are ``{"errors": [{"message", "field", "help"}]}``.

``tests/unit/test_sendgrid_peer.py`` holds it to the body the official ``sendgrid`` package's
``Mail`` helper builds, sent by its own client.
"""

from __future__ import annotations

import base64
import json
import re
import uuid
from dataclasses import dataclass
from typing import Any

from notifier.providers.sendgrid import PATH, SendGridMailProvider, SendGridSettings
from tests.support.peers.http_peer import Answer, MailPeer, Reply, Request

API_KEY = "SG.test-key-0000000000000000.0000000000000000000000000000000000000000000"
TOP = {
    "personalizations", "from", "reply_to", "reply_to_list", "subject", "content",
    "attachments", "template_id", "sections", "headers", "categories", "custom_args", "send_at",
    "batch_id", "asm", "ip_pool_name", "mail_settings", "tracking_settings",
}  # fmt: skip
PERSONALIZATION = {
    "to", "cc", "bcc", "from", "subject", "headers", "substitutions", "dynamic_template_data",
    "custom_args", "send_at",
}  # fmt: skip
# "You may not overwrite the following reserved headers" (the Mail Send reference, headers).
RESERVED = {
    "x-sg-id", "x-sg-eid", "received", "dkim-signature", "content-type",
    "content-transfer-encoding", "to", "from", "subject", "reply-to", "cc", "bcc",
}  # fmt: skip
_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

THROTTLED = Answer(429, "", "too many requests")
UNAVAILABLE = Answer(503, "", "service unavailable")
UNAUTHORIZED = Answer(401, "", "The provided authorization grant is invalid, expired, or revoked")
INVALID_RECIPIENT = Answer(400, "personalizations.0.to.0.email",
                           "Does not contain a valid address.")  # fmt: skip


@dataclass(frozen=True)
class Sent:
    """A mail SendGrid took: its id and the body as it came."""

    message_id: str
    body: dict[str, Any]

    @property
    def recipients(self) -> list[str]:
        return [r["email"] for p in self.body["personalizations"] for part in ("to", "cc", "bcc")
                for r in p.get(part, [])]  # fmt: skip


class Refused(Exception):
    def __init__(self, status: int, field: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.field, self.message = status, field, message


class FakeSendGrid(MailPeer[Sent]):
    """SendGrid on 127.0.0.1; ``sent`` holds what it took, ``refused`` what it did not."""

    def __init__(self, *, senders: tuple[str, ...] = ("example.com",)) -> None:
        super().__init__()
        self.keys = {API_KEY}
        self.senders = set(senders)  # verified sender identities: addresses and domains
        self.refused: list[tuple[int, str | None, str]] = []

    def answer(self, request: Request) -> Reply:
        try:
            if request.method != "POST" or request.path != PATH:
                raise Refused(404, None, "not found")
            given = request.headers.get("authorization", "")
            if not given.startswith("Bearer ") or given.removeprefix("Bearer ") not in self.keys:
                raise Refused(401, None, UNAUTHORIZED.message)
            if not request.headers.get("content-type", "").startswith("application/json"):
                raise Refused(415, None, "Content-Type should be application/json.")
            body = _body(request.body)
            check(body)
            sender = body["from"]["email"].lower()
            if sender not in self.senders and sender.rpartition("@")[2] not in self.senders:
                raise Refused(
                    403, "from",
                    "The from address does not match a verified Sender Identity. Mail cannot be "
                    "sent until this error is resolved.",
                )  # fmt: skip
            planned = self.planned(body["personalizations"][0]["to"][0]["email"])
            if planned is not None:
                raise Refused(planned.status, planned.code or None, planned.message)
        except Refused as e:
            with self.lock:
                self.refused.append((e.status, e.field, e.message))
            return Reply(e.status, {"errors": [{"message": e.message, "field": e.field,
                                                "help": None}]})  # fmt: skip
        message_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode()[:22]
        with self.lock:
            self.sent.append(Sent(message_id, body))
        return Reply(202, None, headers={"X-Message-Id": message_id})


def _body(data: bytes) -> dict[str, Any]:
    try:
        found = json.loads(data)
    except ValueError:
        raise Refused(400, None, "Bad Request") from None
    if not isinstance(found, dict):
        raise Refused(400, None, "Bad Request")
    return found


def check(body: dict[str, Any]) -> None:
    """Refuse what SendGrid refuses in a v3 Mail Send body (the first fault found)."""
    _members(body, TOP, "")
    personalizations = body.get("personalizations")
    if not isinstance(personalizations, list) or not 1 <= len(personalizations) <= 1000:
        raise Refused(400, "personalizations", "You must have at least one personalization.")
    total = 0
    for i, p in enumerate(personalizations):
        where = f"personalizations.{i}"
        if not isinstance(p, dict):
            raise Refused(400, where, "Invalid type. Expected: object")
        _members(p, PERSONALIZATION, where + ".")
        if not p.get("to"):
            raise Refused(400, f"{where}.to",
                          "The to parameter is required for all personalization objects.")  # fmt: skip
        seen: set[str] = set()
        for part in ("to", "cc", "bcc"):
            for j, recipient in enumerate(p.get(part, [])):
                address = _email(recipient, f"{where}.{part}.{j}")
                if address.lower() in seen:
                    raise Refused(
                        400, where,
                        "Each email address in the personalization block should be unique "
                        f"between to, cc, and bcc. We found the first duplicate instance of "
                        f"[{address}] in the {where}.{part} field.",
                    )  # fmt: skip
                seen.add(address.lower())
        total += len(seen)
        for name in ("headers", "custom_args", "substitutions"):
            _strings(p.get(name, {}), f"{where}.{name}")
    if total > 1000:
        raise Refused(400, "personalizations",
                      "There is a limit of 1000 total recipients (to + cc + bcc) per request.")  # fmt: skip
    if "from" not in body:
        raise Refused(400, "from", "The from object must be provided for every email send.")
    _email(body["from"], "from")
    if "reply_to" in body:
        _email(body["reply_to"], "reply_to")
    if (
        not (isinstance(body.get("subject"), str) and body["subject"])
        and not all(p.get("subject") for p in personalizations)
        and "template_id" not in body
    ):
        raise Refused(400, "subject", "The subject is required. You can get around this "
                      "requirement if you use a template with a subject defined or if every "
                      "personalization has a subject defined.")  # fmt: skip
    _content(body)
    _strings(body.get("headers", {}), "headers")
    reserved = sorted(k for k in body.get("headers", {}) if k.lower() in RESERVED)
    if reserved:
        raise Refused(400, "headers", f"{reserved[0]} is a reserved header.")
    _strings(body.get("custom_args", {}), "custom_args")


def _content(body: dict[str, Any]) -> None:
    content = body.get("content")
    if content is None and "template_id" in body:
        return
    if not isinstance(content, list) or not content:
        raise Refused(400, "content", "Unless a valid template_id is provided, the content "
                      "parameter is required. There must be at least one defined content block.")  # fmt: skip
    kinds = []
    for i, block in enumerate(content):
        if not isinstance(block, dict) or set(block) != {"type", "value"}:
            raise Refused(400, f"content.{i}", "Content blocks are {type, value}.")
        if not isinstance(block["value"], str) or not block["value"]:
            raise Refused(400, f"content.{i}.value",
                          "The content value must be a string at least one character in length.")  # fmt: skip
        kinds.append(block["type"])
    known = [k for k in kinds if k in ("text/plain", "text/html")]
    if kinds[: len(known)] != known or known not in (
        ["text/plain"],
        ["text/html"],
        ["text/plain", "text/html"],
    ):
        raise Refused(400, "content", "If present, text/plain and text/html may only be "
                      "provided in order, first, and once each.")  # fmt: skip


def _members(found: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(found) - allowed)
    if unknown:
        raise Refused(400, where + unknown[0], "is not a member SendGrid knows")


def _email(value: Any, where: str) -> str:
    if not isinstance(value, dict) or "email" not in value or set(value) - {"email", "name"}:
        raise Refused(400, where, 'An email is an object, e.g. {"email": "example@example.com"}')
    if not isinstance(value["email"], str) or not _ADDRESS.match(value["email"]):
        raise Refused(400, f"{where}.email", "Does not contain a valid address.")
    if "name" in value and not isinstance(value["name"], str):
        raise Refused(400, f"{where}.name", "Invalid type. Expected: string")
    return value["email"]


def _strings(found: Any, where: str) -> None:
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        raise Refused(400, where, "Invalid type. Expected: object of strings.")


def provider(base_url: str, **kw: Any) -> SendGridMailProvider:
    """The adapter with the fake's key; ``kw`` overrides it and ``max_connections``."""
    options = {"max_connections": kw.pop("max_connections")} if "max_connections" in kw else {}
    values: dict[str, Any] = {"api_key": API_KEY, "base_url": base_url, "timeout": 5, **kw}
    return SendGridMailProvider(SendGridSettings(**values), **options)

"""Bounces: delivery status notifications (RFC 3464) that come back after a relay took a mail.

Each mail to one recipient goes out with its own envelope sender (VERP):
``bounces+<notification id>-<mac>@<NOTIFIER_BOUNCE_DOMAIN>``, the mac an HMAC of the id and the
recipient. The MTA that takes mail for the bounce domain pipes each message to
``POST /v1/bounces``; a DSN there is matched to its notification by the address it was sent back
to, and to its recipient by the mac, so a DSN made up for another address (or for a token it
does not hold) changes nothing. The recipient is the block's ``Original-Recipient`` or its
``Final-Recipient``, whichever the mac is of: behind a forward or an alias the final one is an
address the mail was never sent to (RFC 3464 2.3.1, 2.3.2). A hard bounce (``Action: failed``,
status 5.x.x) moves the notification to ``undelivered`` (a receipt: once, never backwards, with
its callback) and counts in the bounce-rate guard; it puts the address on its client's
suppression list only when the status says the address is bad (RFC 3463: 5.1.x, the address,
but 5.1.7 and 5.1.8, the sender's; 5.2.1, a disabled mailbox): a 5.7.1 policy block of the
sending IP, or a message too large, says nothing of the mailbox, and a suppression would stop its login codes too. An expired one
(``failed`` with a 4.x.x status: the MTA gave up after its queue lifetime) moves it to
``undelivered`` as well, but suppresses nothing: the mailbox may be fine. The DSNs of mail sent
with SMTPUTF8 (``message/global-delivery-status``, RFC 6533) are read as the others. A soft one (``delayed``) is noted on the record as its
``soft_bounce`` and counted. A DSN for a send not recorded yet is refused as unavailable, so
the MTA brings it again.
"""

from __future__ import annotations

import base64
import email
import email.policy
import hashlib
import hmac
import logging
import quopri
import re
from dataclasses import dataclass, replace
from email.message import Message

from notifier.errors import Unavailable
from notifier.providers.smtp import bad_address
from notifier.schemas import Notification
from notifier.services.mail_events import note_rate
from notifier.stores.guard import BounceGuard
from notifier.stores.notifications import OPEN_STATUSES, NotificationStore
from notifier.stores.suppressions import SuppressionList

log = logging.getLogger(__name__)
LOCAL = re.compile(r"bounces\+([0-9a-f]{32})-([0-9a-f]{16})", re.I)
DELIVERY_STATUS = ("message/delivery-status", "message/global-delivery-status")
# A relay can refuse a mail, and its DSN come back, before the worker that sent it records the
# send: the MTA is told to bring the DSN again after this many seconds (Postfix keeps its own
# backoff, other MTAs may read it).
UNRECORDED_RETRY_AFTER = 30


@dataclass(frozen=True)
class Bounces:
    """Where bounces go, and the key of their envelope senders' macs."""

    domain: str
    secret: bytes

    def _mac(self, notification_id: str, recipient: str) -> str:
        message = f"{notification_id}\0{recipient.lower()}".encode()
        return hmac.new(self.secret, message, hashlib.sha256).hexdigest()[:16]

    def envelope_sender(self, notification_id: str, recipient: str) -> str:
        """The envelope sender of a mail to ``recipient`` alone."""
        plain = notification_id.replace("-", "")
        return f"bounces+{plain}-{self._mac(notification_id, recipient)}@{self.domain}"

    def notification_of(self, address: str, recipient: str) -> str | None:
        """The notification a DSN sent back to ``address`` is about, if its mac is the one of
        ``recipient``; else None."""
        local, _, domain = address.strip("<>").rpartition("@")
        found = LOCAL.fullmatch(local)
        if found is None or domain.lower() != self.domain.lower():
            return None
        plain = found[1].lower()
        notification_id = f"{plain[:8]}-{plain[8:12]}-{plain[12:16]}-{plain[16:20]}-{plain[20:]}"
        good = hmac.compare_digest(found[2].lower(), self._mac(notification_id, recipient))
        return notification_id if good else None


@dataclass(frozen=True)
class Failure:
    """One recipient's block of a DSN."""

    recipient: str  # Final-Recipient, else Original-Recipient
    action: str  # failed, delayed, delivered, relayed, expanded
    status: str  # 5.1.1
    diagnostic: str
    original: str = ""  # Original-Recipient, when the DSN has it

    @property
    def final(self) -> bool:
        """The MTA gave the mail up (else it is still trying)."""
        return self.action == "failed"

    @property
    def hard(self) -> bool:
        """Given up for a reason that will not pass (for this mail)."""
        return self.final and self.status.startswith("5.")

    @property
    def bad_address(self) -> bool:
        """Given up because the address is bad: suppress it."""
        return self.hard and bad_address(self.status)

    @property
    def candidates(self) -> list[str]:
        """The addresses the block may be about: the original, then the final one."""
        return [a for a in dict.fromkeys((self.original, self.recipient)) if a]


def failures(raw: bytes) -> tuple[str | None, list[Failure]]:
    """The address a DSN was sent to (its envelope's, from the MTA's Delivered-To, X-Original-To
    or To) and its recipients' blocks; none when the message is not a DSN."""
    message = email.message_from_bytes(raw, policy=email.policy.compat32)
    to = next(
        (str(message[h]) for h in ("X-Original-To", "Delivered-To", "To") if message[h]), None
    )
    if message.get_content_type() != "multipart/report":
        return to, []
    found: list[Failure] = []
    for part in message.walk():
        if part.get_content_type() not in DELIVERY_STATUS:
            continue
        blocks = part.get_payload()
        if not isinstance(blocks, list):
            continue
        if (
            part.get_content_type() == DELIVERY_STATUS[1]
            and len(blocks) == 1
            and isinstance(blocks[0], Message)
        ):
            blocks = _global_blocks(blocks[0], str(part.get("Content-Transfer-Encoding", "")))
        for block in blocks[1:]:
            if isinstance(block, Message):
                found.append(_failure(block))
    return to, [f for f in found if f.recipient]


def _global_blocks(first: Message, encoding: str) -> list[Message]:
    """The blocks of a message/global-delivery-status part (RFC 6533), which email reads as one
    message: the per-message block its headers, the recipients' blocks its body (UTF-8 text,
    one blank line apart, as message/delivery-status's). A part in base64 or quoted-printable
    (RFC 6533 allows both) is read as that text: its headers are none, its body the encoding."""
    encoding = encoding.strip().lower()
    if encoding in ("base64", "quoted-printable"):
        encoded = first.as_string().encode("ascii", "replace")
        decoded = (
            base64.b64decode(encoded) if encoding == "base64" else quopri.decodestring(encoded)
        )
        return _header_blocks(decoded.decode("utf-8", "replace"))
    body = first.get_payload(decode=True)
    return [
        first,
        *_header_blocks(body.decode("utf-8", "replace") if isinstance(body, bytes) else ""),
    ]


def _header_blocks(text: str) -> list[Message]:
    return [
        email.message_from_string(chunk, policy=email.policy.compat32)
        for chunk in re.split(r"\r?\n\r?\n", text)
        if chunk.strip()
    ]


def _failure(block: Message) -> Failure:
    def field(name: str) -> str:
        return " ".join(str(block.get(name, "")).split())

    def address(name: str) -> str:
        # "rfc822; ada@example.com", or RFC 6533's "utf-8; 用户@例子.广告".
        typed = field(name)
        return typed.partition(";")[2].strip() if ";" in typed else typed

    status = field("Status")
    return Failure(
        recipient=address("Final-Recipient") or address("Original-Recipient"),
        action=field("Action").lower(),
        status=status.split()[0] if status else "",
        diagnostic=field("Diagnostic-Code").partition(";")[2].strip() or field("Diagnostic-Code"),
        original=address("Original-Recipient"),
    )


def take_bounce(
    raw: bytes,
    *,
    bounces: Bounces,
    store: NotificationStore,
    suppressions: SuppressionList,
    guard: BounceGuard | None = None,
) -> str:
    """Apply a message the bounce domain received: what it came to (``undelivered``, ``soft``,
    ``ignored`` for a message that is not a DSN of ours, or the status that moved nothing). A
    hard bounce counts in its client's bounce-rate ``guard``.

    Raises Unavailable, before it changes anything, while a send the DSN is about is
    not recorded yet: answered 200, the DSN would be lost.
    """
    outcome = "ignored"
    for block, notification_id, record in _ours(raw, bounces=bounces, store=store):
        if not block.final:
            log.info("%s: soft bounce %s", notification_id, block.status)
            store.soft_bounce(notification_id, block.status, block.diagnostic)
            store.count("bounces:soft")
            outcome = "soft"
            continue
        error = f"bounced: {block.status} {block.diagnostic}".strip()
        moved = "missing"
        if record.provider and record.provider_ref:
            moved = store.receipt(record.provider, record.provider_ref, "undelivered", error=error)
        outcome = "undelivered" if moved == "moved" else moved
        if moved not in ("moved", "early"):
            # Its notification took a final status before: this DSN (a copy, or one replayed
            # after the client took the address off its list) changes nothing, not even the list.
            continue
        kind = "hard" if block.bad_address else "refused" if block.hard else "expired"
        if block.bad_address:
            suppressions.add(record.client, block.recipient, "bounced")
        if block.hard and guard is not None:
            note_rate(guard, record.client, "bounce", store.sent_at(record.id))
        store.count(f"bounces:{kind}")
        log.warning("%s: %s bounce %s", notification_id, kind, block.status)
    if outcome == "ignored":
        store.count("bounces:ignored")
    return outcome


def _ours(
    raw: bytes, *, bounces: Bounces, store: NotificationStore
) -> list[tuple[Failure, str, Notification]]:
    """The blocks of a DSN that are about a mail of ours, each with its notification."""
    to, blocks = failures(raw)
    found = []
    for block in blocks:
        # The address the mail was sent to: the one of the two whose mac the token holds.
        sent_to, notification_id = next(
            ((a, n) for a in block.candidates if (n := bounces.notification_of(to or "", a))),
            (block.recipient, None),
        )
        if notification_id is None or block.action not in ("failed", "delayed"):
            continue
        block = replace(block, recipient=sent_to)
        record = store.get(notification_id)
        if record is None:
            continue
        if record.status in OPEN_STATUSES:
            log.info("%s: bounce before its send was recorded; asked again", notification_id)
            raise Unavailable(
                f"the send of {notification_id} is not recorded yet; bring its DSN again later",
                retry_after=UNRECORDED_RETRY_AFTER,
            )
        found.append((block, notification_id, record))
    return found

"""A real SMTP server (aiosmtpd) that records what arrives and answers as a test tells it.

It is as strict about the wire as a hardened relay: DATA whose lines do not all end in CRLF, or
that holds a line over 998 octets, is refused with a 550 (aiosmtpd itself refuses a line over
about 1,000 octets with ``500 Line too long``), and what it accepts is kept byte for byte.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import threading
import time
from collections import defaultdict, deque
from email.message import EmailMessage
from typing import Any, cast

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from notifier.embedded import free_port

MAX_LINE = 998  # octets a line may hold, CRLF not counted (RFC 5322 2.1.1)


def wire_faults(data: bytes) -> list[str]:
    """What is wrong with ``data`` as the content of DATA: bare CR or LF, over-long lines."""
    lines = data.split(b"\r\n")
    faults = [] if lines[-1] == b"" else ["the last line does not end in CRLF"]
    for number, line in enumerate(lines[:-1], start=1):
        if b"\r" in line or b"\n" in line:
            faults.append(f"line {number} holds a bare CR or LF: {line[:60]!r}")
        if len(line) > MAX_LINE:
            faults.append(f"line {number} has {len(line)} octets (at most {MAX_LINE})")
    return faults


class RecordingHandler:
    """Keep every accepted message; answer RCPT with planned codes first."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.messages: list[tuple[Envelope, EmailMessage]] = []
        self.raw: dict[str, list[bytes]] = defaultdict(list)  # notification id -> DATA as sent
        self.refused: list[tuple[bytes, list[str]]] = []  # DATA refused for its wire format
        self.connections = 0
        self.arrivals: dict[str, float] = {}  # notification id -> when its DATA arrived
        # notification id -> its messages: a session's sink holds thousands, and reading a
        # header of each again for every id a test counts takes minutes.
        self.by_id: dict[str, list[tuple[Envelope, EmailMessage]]] = defaultdict(list)
        self.data_delay = 0.0  # seconds before answering DATA: a slow server
        self.rcpt_delay = 0.0  # seconds before answering each RCPT: a server far away
        # Mail transactions under way (MAIL to DATA's answer or RSET), by session; those whose
        # recipient was taken. A connection that drops mid-mail leaves its entry behind, which
        # is why only the open ones are counted.
        self.transactions: dict[int, SMTP] = {}
        self.rcpt_taken: dict[int, SMTP] = {}
        self.peak_in_flight = 0  # the most in flight at one moment
        self.rcpt_delays: dict[str, deque[float]] = defaultdict(deque)
        self.rcpt_seen: set[str] = set()
        self.plans: dict[str, deque[str | bytes]] = defaultdict(deque)
        # Replies to DATA after the message is kept: a relay that took the mail but whose 250
        # never reached the sender (it sends again).
        self.data_plans: dict[str, deque[str]] = defaultdict(deque)
        # Replies to MAIL FROM, by sender; and to DATA before the message is kept, by recipient:
        # refusals of the whole mail (a sender not verified, an account's sending paused).
        self.sender_plans: dict[str, deque[str]] = defaultdict(deque)
        self.data_refusals: dict[str, deque[str]] = defaultdict(deque)

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        with self.lock:
            self.connections += 1
        session.host_name = hostname
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            plan = self.sender_plans.get(address.lower())
            if plan:
                return plan.popleft()
            self.transactions[id(session)] = server
            self.peak_in_flight = max(self.peak_in_flight, _open(self.transactions))
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    @property
    def in_flight(self) -> int:
        """Mail transactions under way right now on open connections."""
        with self.lock:
            return _open(self.transactions)

    def awaiting_data(self) -> int:
        """Transactions on open connections past RCPT whose DATA is not answered yet.

        While there are none, no mail can be taken in the instant before a sender dies (a new
        one must pass RCPT first, which a test can hold up with ``rcpt_delay``).
        """
        with self.lock:
            return _open(self.rcpt_taken)

    async def handle_RSET(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        # (aiosmtpd has emptied the envelope by now; a refused RCPT ends in RSET too.)
        with self.lock:
            self.transactions.pop(id(session), None)
            self.rcpt_taken.pop(id(session), None)
        return "250 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str | bytes:
        with self.lock:
            self.rcpt_seen.add(address.lower())
            delays = self.rcpt_delays.get(address.lower())
            delay = delays.popleft() if delays else self.rcpt_delay
        if delay:
            await asyncio.sleep(delay)
        with self.lock:
            plan = self.plans.get(address.lower())
            if plan:
                return plan.popleft()
            envelope.rcpt_tos.append(address)
            self.rcpt_taken[id(session)] = server
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.data_delay:
            await asyncio.sleep(self.data_delay)
        with self.lock:
            self.transactions.pop(id(session), None)
        try:
            return self._take(envelope)
        finally:
            # After the arrival is noted, before the answer goes out.
            with self.lock:
                self.rcpt_taken.pop(id(session), None)

    def _take(self, envelope: Envelope) -> str:
        # original_content: the octets of DATA as they came, less the dot-stuffing.
        content = cast(bytes, envelope.original_content or envelope.content)
        faults = wire_faults(content)
        if faults:
            with self.lock:
                self.refused.append((content, faults))
            return f"550 5.6.0 Not RFC 5322 lines: {faults[0]}"
        with self.lock:
            for address in envelope.rcpt_tos:
                refusal = self.data_refusals.get(address.lower())
                if refusal:
                    return refusal.popleft()
        parsed = email.message_from_bytes(content, policy=email.policy.default)
        with self.lock:
            notification_id = str(parsed["X-Notification-Id"])
            self.messages.append((envelope, parsed))
            self.by_id[notification_id].append((envelope, parsed))
            self.raw[notification_id].append(content)
            self.arrivals[notification_id] = time.time()
            for address in envelope.rcpt_tos:
                plan = self.data_plans.get(address.lower())
                if plan:
                    return plan.popleft()
        return "250 Message accepted"


def _open(transactions: dict[int, SMTP]) -> int:
    return sum(
        s.transport is not None and not s.transport.is_closing() for s in transactions.values()
    )


class SmtpSink:
    """An aiosmtpd server on a free port that can be stopped and started again."""

    def __init__(self, *, smtputf8: bool = True) -> None:
        self.port = free_port()
        self.handler = RecordingHandler()
        self.controller: Controller | None = None
        self.smtputf8 = smtputf8  # whether EHLO offers SMTPUTF8 (RFC 6531)

    def start(self) -> None:
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8
        )
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def plan(self, address: str, *answers: str | bytes) -> None:
        """Answer RCPT TO ``address`` with these replies, one an attempt, then accept.

        A reply in bytes goes out as it is (a str must be ASCII: the server has no SMTPUTF8).
        """
        with self.handler.lock:
            self.handler.plans[address.lower()].extend(answers)

    def plan_data(self, address: str, *answers: str) -> None:
        """Keep a mail to ``address`` but answer its DATA with these replies, one an attempt,
        then 250: a relay whose yes was lost, so the same mail arrives again."""
        with self.handler.lock:
            self.handler.data_plans[address.lower()].extend(answers)

    def plan_sender(self, sender: str, *answers: str) -> None:
        """Answer MAIL FROM ``sender`` with these replies, one a transaction, then 250."""
        with self.handler.lock:
            self.handler.sender_plans[sender.lower()].extend(answers)

    def refuse_data(self, address: str, *answers: str) -> None:
        """Answer DATA of a mail to ``address`` with these replies, one an attempt, keeping
        nothing, then take it."""
        with self.handler.lock:
            self.handler.data_refusals[address.lower()].extend(answers)

    @property
    def connections(self) -> int:
        return self.handler.connections

    def received(self, notification_id: str) -> list[tuple[Envelope, EmailMessage]]:
        """The messages that arrived for one notification."""
        with self.handler.lock:
            return list(self.handler.by_id.get(notification_id, []))

    def by_recipient(self) -> dict[str, list[EmailMessage]]:
        """Every message that arrived, by each address it was sent to (lower case)."""
        found: dict[str, list[EmailMessage]] = defaultdict(list)
        with self.handler.lock:
            for envelope, message in self.handler.messages:
                for address in envelope.rcpt_tos:
                    found[address.lower()].append(message)
        return found

    def raw(self, notification_id: str) -> list[bytes]:
        """The DATA of each message that arrived for one notification, octet for octet."""
        with self.handler.lock:
            return list(self.handler.raw.get(notification_id, []))

    def settings(self) -> dict[str, Any]:
        return {"mail_server": "127.0.0.1", "mail_port": self.port, "mail_timeout": 5.0}

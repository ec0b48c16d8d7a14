"""Turn an :class:`OutgoingMail` into the bytes that go on the wire (SMTP and outbox alike).

What any standards-following server takes (RFC 5321 4.5.3.1.6, RFC 5322 2.1.1): lines that end
in CRLF, never a bare CR or LF (relays hardened against SMTP smuggling refuse those), and at most
998 octets a line. So every body part gets a transfer encoding chosen for its content: ``7bit``
when it is ASCII in short lines, ``quoted-printable`` for mostly-ASCII text (long lines, some
non-ASCII), ``base64`` where quoted-printable would grow it by more than a third. Headers are
folded here at 78 octets where there is a place to fold, and a header value that is not
printable ASCII (non-ASCII, or a control character that some reader would take for a line break:
VT, FF, FS, GS, RS, NEL, U+2028...) is written as RFC 2047 encoded words, so nothing raw but
printable ASCII ever reaches a header line. Addresses cannot be encoded: one that is not ASCII
needs SMTPUTF8 (RFC 6531), which :class:`Wire` reports.

Built with the classic ``email.mime`` classes rather than ``EmailMessage``: the modern header
registry parses every header it is given, which cost more than the whole SMTP exchange. Our
headers need no parsing (the addresses were validated on the way in), so a policy writes them as
this module folded them, and the bodies are encoded with ``binascii``, in C.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.policy import Compat32

from notifier.providers.base import OutgoingMail
from notifier.providers.dkim import DkimSigner

MAX_LINE = 998  # octets a line may hold, CRLF not counted (RFC 5322 2.1.1)
FOLD_AT = 78  # where header lines are folded when there is a place to fold
_PRINTABLE = re.compile(r"[\t\x20-\x7e]*")
_SPECIALS = re.compile(r'[()<>\[\]:;@\\,."]')  # RFC 5322 3.2.3
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')  # one quoted-string, whole
# What some reader takes for the end of a line: C0 and C1 controls (NEL is one), DEL, U+2028/9.
_BREAKS = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_ASCII = bytes(range(128))


class _AsFolded(Compat32):
    """compat32 writing each header as stored: this module has folded and encoded it already.

    compat32's own folding splits values with ``str.splitlines()``, which takes VT, FF, FS, GS,
    RS and NEL for line breaks: a control character in a value became a raw line break.
    """

    def fold(self, name: str, value: str) -> str:
        """``name: value`` on lines ending in ``linesep``; the only folds are the stored ones."""
        if "\n" not in value and len(name) + len(value) + 2 > FOLD_AT:
            # Content-Type with a boundary, made by the email package: fold between parameters.
            value = value.replace("; ", ";\n ")
        return f"{name}: {value}\n".replace("\n", self.linesep)

    def fold_binary(self, name: str, value: str) -> bytes:
        """As :meth:`fold`, in UTF-8 (raw UTF-8 is only ever an SMTPUTF8 address)."""
        return self.fold(name, value).encode("utf-8")


_HEADERS = _AsFolded()
_WIRE = _HEADERS.clone(linesep="\r\n")


@dataclass(frozen=True)
class Wire:
    """A mail as it goes on the wire: CRLF lines of at most 998 octets."""

    data: bytes
    message_id: str
    smtputf8: bool  # an address is not ASCII: the server must take SMTPUTF8

    @property
    def mail_options(self) -> list[str]:
        """The MAIL FROM parameters this mail needs (what ``smtplib.send_message`` would add)."""
        return ["SMTPUTF8", "BODY=8BITMIME"] if self.smtputf8 else []


def build_wire(
    message: OutgoingMail,
    dkim: DkimSigner | None = None,
    *,
    unsigned: frozenset[bytes] = frozenset(),
) -> Wire:
    """Build the message and serialise it for SMTP: CRLF line ends, no line over 998 octets;
    signed with ``dkim`` last, over the final bytes, but for the headers ``unsigned`` names
    (lower case: those a provider rewrites)."""
    mime = build_mime(message)
    data = mime.as_bytes(policy=_WIRE)
    return Wire(
        data=dkim.sign(data, message.sender, unsigned=unsigned) if dkim is not None else data,
        message_id=str(mime["Message-ID"]),
        smtputf8=needs_smtputf8(message),
    )


def build_mime(message: OutgoingMail) -> Message:
    """Build the MIME message: text, HTML, or both as multipart/alternative; Bcc left out."""
    mime: Message
    if message.text is not None and message.html is not None:
        mime = MIMEMultipart("alternative", policy=_HEADERS)
        mime.attach(_text_part(message.text, "plain"))
        mime.attach(_text_part(message.html, "html"))
    elif message.text is not None:
        mime = _text_part(message.text, "plain")
    else:
        mime = _text_part(message.html or "", "html")
    for name, value in _headers(message):
        mime[name] = value
    return mime


def _text_part(body: str, subtype: str) -> Message:
    data = body.encode("utf-8")
    if len(data) == len(body) and "\0" not in body and _longest_line(body) <= MAX_LINE:
        part = MIMENonMultipart("text", subtype, policy=_HEADERS, charset="us-ascii")
        part["Content-Transfer-Encoding"] = "7bit"
        part.set_payload(body)  # the generator writes its line ends as CRLF
        return part
    data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    escaped = len(data.translate(None, _ASCII))  # the octets quoted-printable writes as =XX
    part = MIMENonMultipart("text", subtype, policy=_HEADERS, charset="utf-8")
    # Quoted-printable costs 2 more octets for each of those, base64 a third of everything.
    if escaped * 6 < len(data):
        part["Content-Transfer-Encoding"] = "quoted-printable"
        part.set_payload(binascii.b2a_qp(data, istext=True).decode("ascii"))
    else:
        part["Content-Transfer-Encoding"] = "base64"
        # Text is encoded in its canonical form, CRLF line ends (RFC 2045 6.8).
        part.set_payload(base64.encodebytes(data.replace(b"\n", b"\r\n")).decode("ascii"))
    return part


def _longest_line(body: str) -> int:
    # Splitting on LF alone errs long: the generator also ends a line at a lone CR.
    return max(map(len, body.split("\n")))


def _headers(message: OutgoingMail) -> list[tuple[str, str]]:
    if _BREAKS.search("".join(_addresses(message))):
        # Validated on the way in; an address cannot be encoded, so one that could break the
        # header block is refused here rather than written.
        raise ValueError("an address holds a control character and cannot be written")
    headers = [("From", _mailbox("From", message.sender))]
    if message.to:
        headers.append(("To", _fold("To", message.to, ",")))
    if message.cc:
        headers.append(("Cc", _fold("Cc", message.cc, ",")))
    if message.reply_to:
        headers.append(("Reply-To", _mailbox("Reply-To", message.reply_to)))
    headers += [
        # A numeric zone (RFC 5322 3.3): "GMT" is an obsolete form a generator must not write,
        # and "-0000" says the zone is unknown.
        ("Date", email.utils.format_datetime(datetime.now(UTC))),
        ("Message-ID", message_id(message)),
        ("X-Notification-Id", _unstructured("X-Notification-Id", message.notification_id)),
        ("Subject", _unstructured("Subject", message.subject)),
        *((name, _unstructured(name, value)) for name, value in message.headers),
    ]
    return headers


def message_id(message: OutgoingMail) -> str:
    """``<notification id.digest@the sender's domain>``: the same on every attempt at one mail
    (a retry after a relay's 4xx, a send again after a worker died between the relay's yes and
    our record of it), so a receiver can tell a second copy for what it is; another for another
    notification, and for a mail that says something else (a code by mail, made anew when it
    is sent again: a receiver that drops a second copy must not drop the newest code)."""
    said = "\0".join((message.subject, message.text or "", message.html or ""))
    digest = hashlib.sha256(said.encode("utf-8")).hexdigest()[:16]
    domain = _address(message.sender).rpartition("@")[2]
    if not domain.isascii():
        domain = domain.encode("idna").decode("ascii")
    return f"<{message.notification_id}.{digest}@{domain or 'localhost'}>"


def needs_smtputf8(message: OutgoingMail) -> bool:
    """Whether an address the mail names is not ASCII (a local part: domains are punycode by
    now), which only a server that takes SMTPUTF8 carries."""
    return not all(a.isascii() for a in _addresses(message))


def _addresses(message: OutgoingMail) -> tuple[str, ...]:
    """Every address the mail names, without display names."""
    return (_address(message.sender), *message.recipients, _address(message.reply_to or ""))


def _address(mailbox: str) -> str:
    return mailbox.rstrip(">").rpartition("<")[2].strip()


def _unstructured(name: str, value: str) -> str:
    """Printable ASCII folded at spaces, or else encoded words, on lines within the limits."""
    words = value.split(" ")
    if _PRINTABLE.fullmatch(value) and max(map(len, words)) <= MAX_LINE - len(name) - 2:
        return _fold(name, words, "")
    return _fold(name, _encoded_words(name, value), "")


def _mailbox(name: str, value: str) -> str:
    """``Display Name <address>`` or a bare address, the name quoted or encoded when it must
    be."""
    display = value.rstrip(">").rpartition("<")[0].strip()
    address = _address(value)
    if not display:
        return address  # not ASCII: SMTPUTF8 carries it
    if _PRINTABLE.fullmatch(display):
        words = _phrase(display).split(" ")
    else:
        # The name itself, not its quoting: a quoted-pair (\") stands for its character.
        words = _encoded_words(name, email.utils.unquote(display))
    return _fold(name, [*words, f"<{address}>"], "")


def _phrase(display: str) -> str:
    """A display name as RFC 5322 reads one: quoted when it holds a special (``Acme, Inc.``
    unquoted is two mailboxes, the first without an address: no From a receiver takes)."""
    if _QUOTED.fullmatch(display):
        return display
    if not _SPECIALS.search(display):
        return display
    return '"' + display.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _encoded_words(name: str, text: str) -> list[str]:
    """RFC 2047 ``B`` encoded words in UTF-8, cut between characters, never inside one."""
    data = text.encode("utf-8")
    words = []
    start = 0
    room = FOLD_AT - len(name) - 2  # the first word shares its line with "Name: "
    while start < len(data):
        end = min(start + _word_octets(room), len(data))
        while end < len(data) and data[end] & 0xC0 == 0x80:  # a continuation octet
            end -= 1
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start, room = end, FOLD_AT - 1
    return words or [""]


def _word_octets(room: int) -> int:
    """The octets of UTF-8 an encoded word in ``room`` characters (75 at most) can carry."""
    # "=?utf-8?b?" and "?=" take 12 characters; base64 writes 3 octets in 4. Four octets at
    # least, so that any one character fits.
    return max(4, (min(room, 75) - 12) // 4 * 3)


def _fold(name: str, tokens: Sequence[str], separator: str) -> str:
    """Join ``tokens`` with ``separator`` and a space, folding before one that would pass 78."""
    width = len(name) + 2  # "Name: "
    parts: list[str] = []
    for i, token in enumerate(tokens):
        size = len(token) if token.isascii() else len(token.encode("utf-8"))
        gap = separator if i < len(tokens) - 1 else ""
        if i:
            # A fold goes before a token, never before an empty one: a line of only space is
            # not allowed, and unfolding (removing the CRLF) gives back exactly the spaces
            # there were.
            fold = bool(token) and width + 1 + size + len(gap) > FOLD_AT
            parts.append("\n " if fold else " ")
            width = 1 if fold else width + 1
        parts.append(token + gap)
        width += size + len(gap)
    return "".join(parts)

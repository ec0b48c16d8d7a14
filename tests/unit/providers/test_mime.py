"""The wire format of a mail: CRLF lines of at most 998 octets, headers that cannot be split."""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from email.message import EmailMessage, MIMEPart
from pathlib import Path
from typing import cast

import pytest

from notifier.providers.mime import build_wire
from notifier.providers.outbox import OutboxMailProvider, OutboxSettings
from tests.support.harness.mail import CROWD, NEWSLETTER_HTML, NEWSLETTER_TEXT, mail
from tests.support.peers.smtp import wire_faults

# What a reader may take for a line break: VT, FF, FS, GS, RS, NEL, U+2028, U+2029, NUL, CR, LF.
BREAKS = ["\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029", "\x00", "\r", "\n"]


def parsed(data: bytes) -> EmailMessage:
    return email.message_from_bytes(data, policy=email.policy.default)


def content(part: MIMEPart | None) -> str:
    """A text part's content with LF line ends, as a reader's mailer shows its lines."""
    assert part is not None
    return cast(str, part.get_content()).replace("\r\n", "\n")


def header_block(data: bytes) -> bytes:
    return data.split(b"\r\n\r\n", 1)[0]


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (NEWSLETTER_TEXT, None),
        (None, NEWSLETTER_HTML),
        (NEWSLETTER_TEXT, NEWSLETTER_HTML),
        ("Grüße aus Köln — " * 400, "<p>" + "你好，世界。" * 1000 + "</p>"),
        ("a" * 700, None),
        ("line one\rline two\r\nline three\n", None),
    ],
    ids=["long-text", "long-html", "newsletter", "non-ascii", "700", "mixed-line-ends"],
)
def test_every_line_ends_in_crlf_within_998_octets(text: str | None, html: str | None) -> None:
    wire = build_wire(mail(to=CROWD, subject="Newsletter — Grüße ✓", text=text, html=html))
    assert wire_faults(wire.data + b"\r\n") == []
    message = parsed(wire.data)
    for sent, subtype in ((text, "plain"), (html, "html")):
        if sent is not None:
            # Lines arrive, not line-end octets: a lone CR or LF is a line end like CRLF.
            expected = sent.replace("\r\n", "\n").replace("\r", "\n")
            assert content(message.get_body((subtype,))) == expected


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        ("Short ASCII lines\nstay as they are.\n", "7bit"),
        ("x" * 1200, "quoted-printable"),
        ("Mostly ASCII, with a café and a naïve résumé in it.", "quoted-printable"),
        ("你好，世界。" * 50, "base64"),
        ("a\x00b", "quoted-printable"),
    ],
)
def test_transfer_encoding_fits_the_content(body: str, encoding: str) -> None:
    message = parsed(build_wire(mail(text=body)).data)
    assert message["Content-Transfer-Encoding"] == encoding
    assert content(message) == body


def test_fifty_recipients_are_folded_within_78_octets() -> None:
    wire = build_wire(mail(to=CROWD[:25], cc=CROWD[25:]))
    lines = header_block(wire.data).split(b"\r\n")
    assert max(len(line) for line in lines) <= 78
    message = parsed(wire.data)
    assert [a.addr_spec for a in message["To"].addresses] == list(CROWD[:25])
    assert [a.addr_spec for a in message["Cc"].addresses] == list(CROWD[25:])


@pytest.mark.parametrize(
    ("sender", "name"),
    [
        ("Acme, Inc. <noreply@example.com>", "Acme, Inc."),  # unquoted: two mailboxes
        ('Dr. Ada "AL" Lovelace <ada@example.com>', 'Dr. Ada "AL" Lovelace'),
        ('"Acme, Inc." <noreply@example.com>', "Acme, Inc."),  # quoted already
        ('"Acme", "Billing" <noreply@example.com>', '"Acme", "Billing"'),  # two quoted words
        ("Acme Shop <noreply@example.com>", "Acme Shop"),
    ],
)
def test_a_display_name_with_a_special_is_quoted_to_stay_one_mailbox(
    sender: str, name: str
) -> None:
    message = parsed(build_wire(mail(sender=sender)).data)
    (mailbox,) = message["From"].addresses  # one From mailbox: RFC 5322 3.6.2
    assert (mailbox.display_name, mailbox.addr_spec) == (name, sender.rpartition("<")[2][:-1])


@pytest.mark.parametrize("brk", BREAKS, ids=[f"U+{ord(b):04X}" for b in BREAKS])
def test_no_header_carries_a_raw_line_break_or_control(brk: str) -> None:
    injected = f"Hi{brk}X-Injected: yes"
    wire = build_wire(
        mail(
            sender=f"Note{brk}Bcc: x@example.com <noreply@example.com>",
            subject=injected,
            headers=(("X-Campaign", injected),),
        )
    )
    head = header_block(wire.data).decode("ascii")  # nothing but ASCII either
    assert re.search(r"[\x00-\x08\x0a-\x1f\x7f]", head.replace("\r\n", "")) is None
    # compat32 leaves encoded words as they are: the default policy refuses a decoded CR/LF.
    message = email.message_from_bytes(wire.data)
    assert message["X-Injected"] is None and message["Bcc"] is None
    assert email.utils.parseaddr(message["From"])[1] == "noreply@example.com"
    assert wire_faults(wire.data + b"\r\n") == []


def test_a_long_subject_without_spaces_stays_within_998() -> None:
    subject = "x" * 998
    wire = build_wire(mail(subject=subject))
    assert wire_faults(wire.data + b"\r\n") == []
    assert parsed(wire.data)["Subject"] == subject


def test_non_ascii_display_name_is_encoded_not_the_address() -> None:
    wire = build_wire(mail(sender="Grüße GmbH <noreply@example.com>"))
    assert not wire.smtputf8
    assert b"<noreply@example.com>" in header_block(wire.data)
    assert parsed(wire.data)["From"] == "Grüße GmbH <noreply@example.com>"


def test_a_quoted_non_ascii_display_name_keeps_its_quotes_not_their_backslashes() -> None:
    """A quoted-pair stands for its character (RFC 5322 3.2.4): the name reads Zoë, Ltd. "Q"."""
    wire = build_wire(mail(sender='"Zoë, Ltd. \\"Q\\"" <noreply@example.com>'))
    (mailbox,) = parsed(wire.data)["From"].addresses
    assert (mailbox.display_name, mailbox.addr_spec) == ('Zoë, Ltd. "Q"', "noreply@example.com")


def test_the_date_has_a_numeric_zone() -> None:
    """RFC 5322 3.3: "GMT" is an obsolete zone a generator must not write; -0000 is unknown."""
    head = header_block(build_wire(mail()).data).decode()  # as written: a parser normalises it
    date = re.search(r"^Date: ([^\r\n]*)", head, re.M)
    assert date and re.fullmatch(r"\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000", date[1]), (
        head
    )


def test_punycode_stays_ascii_and_needs_no_smtputf8() -> None:
    wire = build_wire(mail(to=("ada@xn--bcher-kva.example",)))
    assert not wire.smtputf8
    assert wire.mail_options == []
    assert b"To: ada@xn--bcher-kva.example\r\n" in wire.data


def test_a_non_ascii_address_needs_smtputf8() -> None:
    wire = build_wire(mail(to=("用户@例子.广告",), subject="你好", text="正文"))
    assert wire.smtputf8
    assert wire.mail_options == ["SMTPUTF8", "BODY=8BITMIME"]
    assert "To: 用户@例子.广告\r\n".encode() in wire.data
    assert wire_faults(wire.data + b"\r\n") == []


def test_an_address_with_a_control_character_is_never_written() -> None:
    with pytest.raises(ValueError, match="control character"):
        build_wire(mail(to=("ada@example.com\x0bBcc: x@example.com",)))


def test_the_outbox_writes_the_wire_bytes(tmp_path: Path) -> None:
    message = mail(to=CROWD, text=NEWSLETTER_TEXT, html=NEWSLETTER_HTML)
    OutboxMailProvider(OutboxSettings(dir=tmp_path)).send_mail(message=message)
    data = (tmp_path / "n1.eml").read_bytes()
    assert wire_faults(data + b"\r\n") == []
    assert b"\r\nX-Notification-Id: n1\r\n" in data


def test_one_mail_has_one_message_id_on_every_attempt() -> None:
    """Built again (a retry, a send again after a worker died), the mail keeps its Message-ID,
    under the sender's domain; another notification's differs, as does a mail that says
    something else under the same id (a code by mail made anew)."""
    first, again = build_wire(mail("6f1c")), build_wire(mail("6f1c", to=("bo@example.com",)))
    assert first.message_id == again.message_id == parsed(first.data)["Message-ID"]
    assert re.fullmatch(r"<6f1c\.[0-9a-f]{16}@example\.com>", first.message_id)
    assert build_wire(mail("7a2d")).message_id != first.message_id
    assert build_wire(mail("6f1c", text="Your code is 530917")).message_id != first.message_id
    unicode = build_wire(mail("6f1c", sender="Notifier <noreply@bücher.example>"))
    assert unicode.message_id.endswith("@xn--bcher-kva.example>")

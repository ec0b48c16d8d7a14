"""Delivery status notifications (RFC 3464) as Postfix writes them, for the bounce tests."""

from __future__ import annotations

import base64
import quopri


def dsn(
    to: str,
    recipient: str,
    *,
    status: str = "5.1.1",
    action: str = "failed",
    diagnostic: str = "smtp; 550 5.1.1 <{r}>: Recipient address rejected: User unknown",
    message_id: str = "<m1@example.com>",
    final: str | None = None,
    utf8: bool = False,
    encoding: str | None = None,
) -> bytes:
    """A DSN sent to ``to`` (the envelope sender of the mail) about ``recipient``; its
    Final-Recipient ``final`` when the mail was forwarded there; with ``utf8``, as for a mail
    sent with SMTPUTF8 (RFC 6533: ``message/global-delivery-status``, ``utf-8`` addresses), its
    delivery status in ``encoding`` (``base64``, ``quoted-printable``) if given."""
    kind, typed = (
        ("message/global-delivery-status", "utf-8")
        if utf8
        else ("message/delivery-status", "rfc822")
    )
    boundary = "C1A7E3F2B1.1701600000/postfix.notifier.test"
    text = f"""Return-Path: <>
From: MAILER-DAEMON@postfix.notifier.test (Mail Delivery System)
Subject: Undelivered Mail Returned to Sender
To: {to}
Auto-Submitted: auto-replied
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status;
\tboundary="{boundary}"
Message-Id: <20261203.C1A7E3F2B1@postfix.notifier.test>

This is a MIME-encapsulated message.

--{boundary}
Content-Description: Notification
Content-Type: text/plain; charset=us-ascii

I'm sorry to have to inform you that your message could not
be delivered to one or more recipients.

--{boundary}
Content-Description: Delivery report
Content-Type: {kind}

Reporting-MTA: dns; postfix.notifier.test
X-Postfix-Queue-ID: C1A7E3F2B1
X-Postfix-Sender: rfc822; {to}
Arrival-Date: Thu,  3 Dec 2026 14:00:00 +0000 (UTC)

Final-Recipient: {typed}; {final or recipient}
Original-Recipient: {typed};{recipient}
Action: {action}
Status: {status}
Remote-MTA: dns; 127.0.0.1
Diagnostic-Code: {diagnostic.format(r=recipient)}

--{boundary}
Content-Description: Undelivered Message Headers
Content-Type: text/rfc822-headers

From: Notifier <noreply@example.com>
To: {recipient}
Subject: Hello
Message-ID: {message_id}

--{boundary}--
"""
    if utf8:
        text = text.replace("charset=us-ascii", "charset=utf-8")
    text = text.replace("\n", "\r\n")
    if encoding is not None:
        head, _, rest = text.partition(f"Content-Type: {kind}\r\n\r\n")
        status, separator, tail = rest.partition(f"\r\n--{boundary}")
        raw = status.replace("\r\n", "\n").encode()  # its line breaks, the wire's CRLF below
        coded = base64.encodebytes(raw) if encoding == "base64" else quopri.encodestring(raw)
        text = (
            f"{head}Content-Type: {kind}\r\nContent-Transfer-Encoding: {encoding}\r\n\r\n"
            + coded.decode("ascii").replace("\n", "\r\n")
            + separator
            + tail
        )
    return text.encode()

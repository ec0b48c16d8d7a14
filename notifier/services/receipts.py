"""Delivery receipts: a provider says a message it took was delivered, or not."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from notifier.stores.notifications import NotificationStore

log = logging.getLogger(__name__)

# Twilio's MessageStatus values that end a message's life; the others (queued, sending, sent,
# accepted, scheduled, …) are on the way there and change nothing of ours.
TWILIO_FINAL = {"delivered": "delivered", "undelivered": "undelivered", "failed": "undelivered"}
TENCENT_FINAL = {"SUCCESS": "delivered", "FAIL": "undelivered"}
# Aliyun's err_msg is a short carrier text ("用户接收成功", "空号"); a longer one is left out,
# as is one with a run of digits that could be a phone number.
SHORT_MESSAGE = 40
_DIGITS = re.compile(r"\d{5}")


@dataclass(frozen=True)
class Report:
    """One receipt as read: the provider's message id, what it said and what that is to us."""

    ref: str
    reported: str
    # delivered or undelivered; None when it is not final (or not understood): ignored.
    status: str | None
    error: str | None = None


def _text(report: Mapping[str, Any], key: str) -> str:
    """A field of a JSON report as text; an absent or null field is empty."""
    value = report.get(key)
    return "" if value is None else str(value)


def _twilio(form: Mapping[str, str]) -> Report:
    reported = form.get("MessageStatus", "")
    status = TWILIO_FINAL.get(reported)
    code = form.get("ErrorCode")
    error = f"Twilio error {code}" if code and status == "undelivered" else None
    return Report(form.get("MessageSid", ""), reported, status, error)


def _aliyun(report: Mapping[str, Any]) -> Report:
    """One of Aliyun's SmsReport items: ``success`` is the verdict, ``err_code`` says why."""
    success, code = report.get("success"), _text(report, "err_code")
    if success is True:
        return Report(_text(report, "biz_id"), code or "DELIVERED", "delivered")
    if success is not False:
        return Report(_text(report, "biz_id"), code or repr(success), None)
    message = _text(report, "err_msg")
    error = f"Aliyun {code or 'error'}"
    if (
        message
        and message != code
        and len(message) <= SHORT_MESSAGE
        and not _DIGITS.search(message)
    ):
        error += f": {message}"
    return Report(_text(report, "biz_id"), code, "undelivered", error)


def _tencent(report: Mapping[str, Any]) -> Report:
    """One of Tencent's status callback items: ``report_status``, with ``errmsg`` the code."""
    reported = _text(report, "report_status")
    status = TENCENT_FINAL.get(reported)
    error = f"Tencent {_text(report, 'errmsg') or 'error'}" if status == "undelivered" else None
    return Report(_text(report, "sid"), reported, status, error)


def _apply(provider: str, report: Report, *, store: NotificationStore) -> str:
    """Apply one report; what it came to (see ``store.receipt``), or ``ignored``."""
    vendor = provider.title()
    if not report.ref or report.status is None:
        log.info(
            "receipt %r from %s without a message id or a final status ignored",
            report.reported,
            vendor,
        )
        return "ignored"
    outcome = store.receipt(provider, report.ref, report.status, error=report.error)
    if outcome == "unknown":
        # Not ours, or long gone: providers retry anything but a 200, so they get one.
        log.info("receipt for an unknown %s message %s ignored", vendor, report.ref)
    else:
        log.info("receipt %s for %s message %s: %s", report.reported, vendor, report.ref, outcome)
    return outcome


def twilio_receipt(form: Mapping[str, str], *, store: NotificationStore) -> str:
    """Apply one of Twilio's status callbacks; what it came to (see ``store.receipt``)."""
    return _apply("twilio", _twilio(form), store=store)


def aliyun_receipts(reports: Iterable[Mapping[str, Any]], *, store: NotificationStore) -> list[str]:
    """Apply a push of Aliyun's SmsReport; what each report came to, in order."""
    return [_apply("aliyun", _aliyun(report), store=store) for report in reports]


def tencent_receipts(
    reports: Iterable[Mapping[str, Any]], *, store: NotificationStore
) -> list[str]:
    """Apply a push of Tencent's status callback; what each report came to, in order."""
    return [_apply("tencent", _tencent(report), store=store) for report in reports]

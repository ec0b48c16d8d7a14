"""Aliyun's and Tencent's receipt reports, read and applied to the store."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from config import Settings
from notifier import create_app
from notifier.services.receipts import aliyun_receipts, tencent_receipts, twilio_receipt
from notifier.stores.notifications import NotificationStore
from tests.support.harness.api import sent_sms

PHONE = "1381111****"


@pytest.fixture
def store(make_settings: Callable[..., Settings]) -> NotificationStore:
    """A store with captchas sent through Aliyun (a1, a2) and Tencent (t1, t2)."""
    found: NotificationStore = create_app(make_settings()).extensions["notifier"].store
    sent_sms(found, "a1", "aliyun", "100^0")
    sent_sms(found, "a2", "aliyun", "200^0")
    sent_sms(found, "t1", "tencent", "2019:1")
    sent_sms(found, "t2", "tencent", "2019:2")
    return found


def shown(store: NotificationStore, notification_id: str) -> tuple[str, str | None]:
    record = store.get(notification_id)
    assert record is not None
    return record.status, record.error


def aliyun(
    biz_id: object, success: object, code: str = "DELIVERED", msg: str = ""
) -> dict[str, object]:
    """One SmsReport item as Aliyun pushes it."""
    return {
        "phone_number": PHONE, "send_time": "2026-11-23 10:00:00",
        "report_time": "2026-11-23 10:00:05", "success": success, "err_code": code,
        "err_msg": msg, "sms_size": "1", "biz_id": biz_id, "out_id": "",
    }  # fmt: skip


def test_an_aliyun_push_applies_each_report_in_order(store: NotificationStore) -> None:
    outcomes = aliyun_receipts(
        [
            aliyun("100^0", True, msg="用户接收成功"),
            aliyun("200^0", False, "MK:0001", "空号"),
            aliyun("999^0", True),  # not ours, or not yet recorded
            aliyun("", True),  # no id
            aliyun("100^0", "yes"),  # not a verdict
        ],
        store=store,
    )
    assert outcomes == ["moved", "moved", "early", "ignored", "ignored"]
    assert shown(store, "a1") == ("delivered", None)
    assert shown(store, "a2") == ("undelivered", "Aliyun MK:0001: 空号")


@pytest.mark.parametrize("message", ["x" * 41, "13811110000 空号", ""])
def test_an_aliyun_error_leaves_out_a_long_message_or_a_number(
    store: NotificationStore, message: str
) -> None:
    aliyun_receipts([aliyun("200^0", False, "UNDELIV", message)], store=store)
    assert shown(store, "a2") == ("undelivered", "Aliyun UNDELIV")


def test_a_tencent_push_applies_each_report(store: NotificationStore) -> None:
    def report(sid: object, status: str, errmsg: str) -> dict[str, object]:
        return {
            "user_receive_time": "2026-11-23 10:00:05", "nationcode": "86",
            "mobile": "13800138000", "report_status": status, "errmsg": errmsg,
            "description": "", "sid": sid,
        }  # fmt: skip

    outcomes = tencent_receipts(
        [
            report("2019:1", "SUCCESS", "DELIVRD"),
            report("2019:2", "FAIL", "002"),
            report("2019:1", "PENDING", ""),  # not a status Tencent sends
            report(None, "SUCCESS", "DELIVRD"),
        ],
        store=store,
    )
    assert outcomes == ["moved", "moved", "ignored", "ignored"]
    assert shown(store, "t1") == ("delivered", None)
    assert shown(store, "t2") == ("undelivered", "Tencent 002")
    # The same push again (Tencent retries twice) moves nothing.
    assert tencent_receipts([report("2019:2", "SUCCESS", "DELIVRD")], store=store) == [
        "undelivered"
    ]


def test_each_provider_only_finds_its_own_messages(store: NotificationStore) -> None:
    assert tencent_receipts([{"sid": "100^0", "report_status": "SUCCESS"}], store=store) == [
        "early"
    ]
    assert twilio_receipt({"MessageSid": "2019:1", "MessageStatus": "delivered"}, store=store) == (
        "early"
    )
    assert shown(store, "a1") == ("sent", None)
    assert shown(store, "t1") == ("sent", None)

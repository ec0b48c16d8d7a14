from __future__ import annotations

import json
import logging

from notifier.logs import JsonFormatter, request_id
from notifier.redact import redact


def test_addresses_and_numbers_are_masked() -> None:
    text = "SMTP 550: <ada.lovelace@example.com> unknown; SMS to +8613800138000 failed"
    assert redact(text) == "SMTP 550: <a***@example.com> unknown; SMS to +86*********00 failed"


def test_json_lines_carry_level_message_request_id_and_extras() -> None:
    record = logging.makeLogRecord(
        {
            "name": "x",
            "levelname": "INFO",
            "msg": "to %s",
            "args": ("bob@example.com",),
            "status": 202,
        }
    )
    token = request_id.set("r-1")
    try:
        record.request_id = request_id.get()
        line = JsonFormatter().format(record)
    finally:
        request_id.reset(token)
    entry = json.loads(line)
    assert entry["msg"] == "to b***@example.com"
    assert (entry["level"], entry["logger"], entry["request_id"], entry["status"]) == (
        "INFO",
        "x",
        "r-1",
        202,
    )
    assert "\n" not in line

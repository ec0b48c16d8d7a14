"""Log formatters: personal data masked in the message, the traceback and every extra field."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from celery import Celery

from notifier.logs import JsonFormatter, TextFormatter

ADDRESS, OTHER, PHONE = "用户@例子.中国", "jürgen@bücher.example", "+8613800138000"


class Keep(logging.Handler):
    """Keep the records a logger emits."""

    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def celery_failure() -> Iterator[logging.LogRecord]:
    """The record Celery's tracer logs for a task that raised (celery/app/trace.py)."""
    app = Celery("logs-test", set_as_current=False)

    @app.task(name="leaky", shared=False)  # no other app of the run gets it
    def leaky(to: str, subject: str) -> None:
        raise ValueError(f"cannot send {subject!r} to {to} or {PHONE}")

    keep = Keep()
    trace = logging.getLogger("celery.app.trace")
    trace.addHandler(keep)
    try:
        leaky.apply(args=(ADDRESS,), kwargs={"subject": f"for {OTHER}"})
    finally:
        trace.removeHandler(keep)
    (record,) = [r for r in keep.records if r.levelno >= logging.ERROR]
    yield record


def test_celery_failure_lines_are_masked_in_json(celery_failure: logging.LogRecord) -> None:
    data: Any = vars(celery_failure)["data"]
    assert ADDRESS in data["exc"] and ADDRESS in data["args"]  # what Celery hands over
    line = JsonFormatter().format(celery_failure)
    for secret in (ADDRESS, OTHER, PHONE):
        assert secret not in line
    entry = json.loads(line)
    assert "用***@例子.中国" in entry["data"]["exc"]
    assert "j***@bücher.example" in entry["data"]["kwargs"]
    assert "用***@例子.中国" in entry["data"]["args"]
    assert "+86*********00" in entry["data"]["traceback"]
    assert "ValueError" in entry["exc"]


def test_celery_failure_lines_are_masked_in_text(celery_failure: logging.LogRecord) -> None:
    celery_failure.request_id = None
    line = TextFormatter().format(celery_failure)
    assert "ValueError" in line and "用***@例子.中国" in line
    for secret in (ADDRESS, OTHER, PHONE):
        assert secret not in line


def test_extras_of_any_shape_are_masked() -> None:
    record = logging.makeLogRecord(
        {
            "msg": "refused",
            "refusals": {OTHER: [550, f"<{OTHER}> unknown"]},
            "numbers": (PHONE,),
            "count": 2,
        }
    )
    entry = json.loads(JsonFormatter().format(record))
    assert entry["refusals"] == {"j***@bücher.example": [550, "<j***@bücher.example> unknown"]}
    assert (entry["numbers"], entry["count"]) == (["+86*********00"], 2)


def test_at_debug_the_libraries_that_log_whole_requests_stay_at_info() -> None:
    # botocore at DEBUG logs an SES SendEmail whole: its raw MIME, a code by mail in it.
    import logging

    from notifier import logs

    before = {n: logging.getLogger(n).level for n in ("", "botocore", "urllib3", "notifier")}
    try:
        logs.configure("DEBUG", "text")
        assert logging.getLogger("notifier").getEffectiveLevel() == logging.DEBUG
        for wire in ("botocore", "urllib3", "requests", "kombu"):
            assert logging.getLogger(wire).getEffectiveLevel() == logging.INFO, wire
    finally:
        for name, level in before.items():
            logging.getLogger(name).setLevel(level)

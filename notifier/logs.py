"""Logging: one JSON object a line (or plain text in development), a request id that follows
a notification from the web request into the worker, personal data masked.
"""

from __future__ import annotations

import contextvars
import json
import logging
import re
import uuid
from datetime import UTC, datetime
from typing import Any

from celery.app.trace import log_policy_expected as EXPECTED

from notifier.redact import scrub

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)
_VALID_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
# Attributes every LogRecord has; anything else came in through ``extra={}``.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


def new_request_id(offered: str | None) -> str:
    """The caller's ``X-Request-Id`` when it is sane, else a new one."""
    return offered if offered and _VALID_ID.match(offered) else uuid.uuid4().hex


class RequestIdFilter(logging.Filter):
    """Put the current request id on every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class TaskRefusals(logging.Filter):
    """Of Celery's lines about each task (``celery.app.trace``) below WARNING, only a refusal the
    task expects (one of its ``throws``: a caller's bad request, not a fault), without the
    traceback Celery puts in its ``data``. The others (succeeded, with the return value, which
    may be a signed upload form; retried) say less than Notifier's own lines."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING:
            return True
        data = getattr(record, "data", None)
        if not isinstance(data, dict) or data.get("description") != EXPECTED.description:
            return False
        record.data = {k: v for k, v in data.items() if k != "traceback"}
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, request id, extras."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": scrub(record.getMessage()),
        }
        # Extras are masked as well: Celery's failure lines carry the exception text and the
        # task's arguments in a ``data`` dict.
        entry.update(
            {k: _masked(v) for k, v in vars(record).items() if k not in _STANDARD and v is not None}
        )
        if record.exc_info:
            entry["exc"] = scrub(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False, default=str)


def _masked(value: Any) -> Any:
    """``value`` with every string in it redacted; what JSON cannot hold becomes a string."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, bool | int | float) or value is None:
        return value
    if isinstance(value, dict):
        return {_masked(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return scrub(str(value))


class TextFormatter(logging.Formatter):
    """Plain lines for a person at a terminal; personal data masked all the same."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


def configure(level: str, fmt: str) -> None:
    """Send every log record to stderr in ``fmt`` ("json" or "text")."""
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "notifier", False)), None)
    if handler is None:
        handler = logging.StreamHandler()
        handler.notifier = True  # type: ignore[attr-defined]
        handler.addFilter(RequestIdFilter())
        root.addHandler(handler)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root.setLevel(level)
    # Celery logs every task sent, received and finished; beat's once-a-second dispatch would
    # drown everything else. Our services log what happened to each notification instead, and
    # of a task's own lines only its refusals are kept (TaskRefusals). The Twilio SDK logs every
    # request's URL and headers at INFO: no use in our logs.
    trace = logging.getLogger("celery.app.trace")
    trace.setLevel(root.level)
    if not any(isinstance(f, TaskRefusals) for f in trace.filters):
        trace.addFilter(TaskRefusals())
    for chatty in (
        "celery.worker.strategy",
        "celery.beat",
        "twilio.http_client",
    ):
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    # At DEBUG these log whole requests and answers, a message's text with its code among them
    # (botocore: an SES SendEmail's raw MIME; urllib3 and requests: URLs with their tokens):
    # never at DEBUG, whatever NOTIFIER_LOG_LEVEL asks.
    for wire in ("botocore", "boto3", "urllib3", "requests", "s3transfer", "kombu", "amqp"):
        logging.getLogger(wire).setLevel(max(logging.INFO, root.level))

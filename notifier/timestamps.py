"""Times as the API writes them: RFC 3339, UTC, milliseconds, ``Z``."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(timestamp: float) -> str:
    """Format a Unix time as RFC 3339 in UTC with milliseconds."""
    moment = datetime.fromtimestamp(timestamp, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def seconds(stamp: str | None) -> float:
    """An RFC 3339 time (as :func:`rfc3339` writes it, or an ISO 8601 one with an offset) as
    Unix seconds; 0 for none."""
    return datetime.fromisoformat(stamp).timestamp() if stamp else 0.0

"""In-memory providers for tests: they keep what they were given and fail on demand."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from notifier.errors import ProviderError
from notifier.providers.base import OutgoingMail


class MemoryMailProvider:
    """Keep sent mails in ``sent``; raise the queued ``failures`` first, one a call."""

    name = "memory"

    def __init__(self, failures: Iterable[ProviderError] = ()) -> None:
        self.sent: list[OutgoingMail] = []
        self.failures: deque[ProviderError] = deque(failures)

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Record the message, or raise the next queued failure."""
        if self.failures:
            raise self.failures.popleft()
        self.sent.append(message)
        return f"<{message.notification_id}@memory>"

    def close(self) -> None:
        """Nothing to release."""

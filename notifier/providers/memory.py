"""In-memory providers for tests: they keep what they were given and fail on demand."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable

from notifier.errors import ProviderError
from notifier.providers.base import OutgoingMail


class _Failing:
    """Raise the queued ``failures`` first, one a call."""

    def __init__(self, failures: Iterable[ProviderError] = ()) -> None:
        self.failures: deque[ProviderError] = deque(failures)

    def _maybe_fail(self) -> None:
        if self.failures:
            raise self.failures.popleft()

    def close(self) -> None:
        """Nothing to release."""


class MemoryMailProvider(_Failing):
    """Keep sent mails in ``sent``; raise the queued ``failures`` first."""

    def __init__(self, failures: Iterable[ProviderError] = (), name: str = "memory") -> None:
        super().__init__(failures)
        self.name = name
        self.sent: list[OutgoingMail] = []

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Record the message, or raise the next queued failure."""
        self._maybe_fail()
        self.sent.append(message)
        return f"<{message.notification_id}@{self.name}>"


class MemorySmsProvider(_Failing):
    """Keep sent texts in ``sent`` as (number, text); raise queued ``failures`` first."""

    def __init__(self, failures: Iterable[ProviderError] = (), name: str = "memory") -> None:
        super().__init__(failures)
        self.name = name
        self.sent: list[tuple[str, str]] = []

    def send_sms(self, *, to: str, body: str) -> str:
        """Record the text, or raise the next queued failure."""
        self._maybe_fail()
        self.sent.append((to, body))
        return f"{self.name}-{len(self.sent)}"

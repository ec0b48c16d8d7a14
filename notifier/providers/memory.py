"""In-memory providers for tests: they keep what they were given and fail on demand."""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from typing import Literal

from notifier.errors import PermanentProviderError, ProviderError
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
    """Keep sent texts in ``sent`` as (number, text), and the sender each was given in
    ``senders``; raise queued ``failures`` first."""

    def __init__(self, failures: Iterable[ProviderError] = (), name: str = "memory") -> None:
        super().__init__(failures)
        self.name = name
        self.sent: list[tuple[str, str]] = []
        self.senders: list[str | None] = []

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        """Record the text, or raise the next queued failure."""
        self._maybe_fail()
        self.sent.append((to, body))
        self.senders.append(sender)
        return f"{self.name}-{len(self.sent)}"


class MemoryTemplateProvider(_Failing):
    """A template-only SMS provider (as Aliyun and Tencent are): keeps what it was asked to send
    in ``sent`` as (number, template id, parameters, sign name), refuses free text, and raises
    the queued ``failures`` first. ``params_style`` is the vendor's it stands for."""

    def __init__(
        self,
        name: str,
        params_style: Literal["named", "ordered"],
        failures: Iterable[ProviderError] = (),
    ) -> None:
        super().__init__(failures)
        self.name = name
        self.params_style = params_style
        self.sent: list[tuple[str, str, dict[str, str] | list[str], str | None]] = []

    def send_template(
        self,
        *,
        to: str,
        template_id: str,
        params: Mapping[str, str] | Sequence[str],
        sign_name: str | None = None,
    ) -> str:
        """Record the template and its parameters, or raise the next queued failure."""
        self._maybe_fail()
        kept = dict(params) if isinstance(params, Mapping) else list(params)
        self.sent.append((to, template_id, kept, sign_name))
        return f"{self.name}-{len(self.sent)}"

    def send_sms(self, *, to: str, body: str, sender: str | None = None) -> str:
        """Refuse, as the vendors it stands for do."""
        raise PermanentProviderError(f"{self.name} sends templates only", provider=self.name)

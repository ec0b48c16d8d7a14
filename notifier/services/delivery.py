"""The steps every delivery shares: claim the notification, make one attempt, record it."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol, TypeVar

from notifier import tracing
from notifier.errors import (
    NotForThisProvider,
    PermanentProviderError,
    ProviderError,
    TransientProviderError,
)
from notifier.providers.signed_http import RecipientThrottled
from notifier.providers.simulated import NAME as SIMULATOR
from notifier.providers.simulated import Outcome as SimulatedOutcome
from notifier.providers.simulated import simulate
from notifier.queueing import Enqueuer, Intake, Note
from notifier.schemas import Notification
from notifier.stores.notifications import NotificationStore

if TYPE_CHECKING:
    from notifier.providers.base import MailProvider, SmsProvider
    from notifier.services.bounces import Bounces
    from notifier.services.captcha import CaptchaPolicy
    from notifier.stores.captchas import CaptchaStore
    from notifier.stores.suppressions import SuppressionList
    from notifier.templating import MailTemplates, SmsTemplates


class Named(Protocol):
    """A provider, as a failover route sees it."""

    @property
    def name(self) -> str: ...


P = TypeVar("P", bound=Named)
log = logging.getLogger(__name__)


def store_and_queue(
    store: NotificationStore,
    queue: Enqueuer,
    *,
    client: str,
    kind: str,
    payload: dict[str, Any],
    send_at: float | None = None,
    expires: float | None = None,
    reference: str | None = None,
    test: bool = False,
    note: Note | None = None,
    extra: dict[str, str] | None = None,
) -> Notification:
    """Store a new notification and queue its task (unless it waits for ``send_at``).

    A test client's (``test``) is marked so, in its payload and its record: the worker
    simulates its delivery, and /metrics and the logs tell it apart. ``extra``: fields of the
    record its kind has (an SMS's ``segments``).

    Either both happen or neither: a message that cannot be queued takes its record with it,
    and the caller's 503 is true. ``note`` is told its id once it is accepted.
    """
    notification_id = str(uuid.uuid4())
    if test:
        payload = {**payload, "test": True}
    new = NewNotification(
        store, notification_id, client, kind, payload, send_at, reference, test, extra or {}
    )
    return Intake(queue, note).take(notification_id, new, now=send_at is None, expires=expires)


@dataclass(frozen=True)
class NewNotification:
    """A notification a request stores: its record, or, taken back, none."""

    store: NotificationStore
    id: str
    client: str
    kind: str
    payload: dict[str, Any]
    send_at: float | None
    reference: str | None
    test: bool
    extra: dict[str, str]

    def write(self, push: tuple[str, str] | None) -> Notification:
        """Store its record, with the task's message ``push`` in the same transaction."""
        return self.store.create(
            notification_id=self.id,
            client=self.client,
            kind=self.kind,
            payload=self.payload,
            send_at=self.send_at,
            push=push,
            reference=self.reference,
            test=self.test,
            extra=self.extra,
        )

    def stored(self) -> Notification | None:
        """Its record, if it is there."""
        return self.store.get(self.id)

    def take_back(self) -> bool:
        """Remove its record; False when a worker has it already (kept)."""
        return self.store.discard(self.id)


@dataclass(frozen=True)
class Outcome:
    """What one delivery attempt came to.

    ``retry`` asks for another attempt after a backoff, before ``deadline`` if one is set;
    ``busy`` asks to look again in ``wait`` seconds, when another task's claim runs out.
    """

    status: Literal["sent", "failed", "retry", "skipped", "busy"]
    attempt: int = 0
    deadline: float | None = None
    wait: float = 0.0


class Unrecorded(Exception):
    """A provider took the message, and its send could not be recorded."""


@dataclass(frozen=True)
class Delivery:
    """What a delivery attempt needs besides its notification's id: built once by the
    :class:`~notifier.runtime.Runtime` (``rt.delivery``); a test changes what it needs with
    :func:`dataclasses.replace`.

    The providers are reached through getters, since each process makes its own (a forked
    worker never shares its parent's sockets).
    """

    store: NotificationStore
    max_attempts: int
    lease: float  # how long a claim holds before another message's copy may take it over
    code_lease: float  # ... a code's claim: shorter, so a second copy comes while it is of use
    mails: Callable[[], Sequence[MailProvider]]  # this process's mail providers, failover order
    sms: Callable[[str], Sequence[SmsProvider]]  # a number's SMS providers, in failover order
    captchas: CaptchaStore
    captcha_policy: CaptchaPolicy
    sms_templates: SmsTemplates
    mail_captcha_templates: MailTemplates
    sender: str  # the From of mail that does not say (captchas by mail)
    suppressions: SuppressionList
    expand: Callable[[dict[str, Any]], dict[str, Any]]  # a batch row's payload made its mail
    expand_sms: Callable[[dict[str, Any]], dict[str, Any]]  # ... made its SMS
    unsubscribe: Callable[[str, str], str] | None  # (client, address) -> URL; None: no public URL
    bounces: Bounces | None  # envelope senders of each mail's own; None: no bounce domain

    def attempt(
        self,
        notification_id: str,
        send: Callable[[Attempt], Outcome],
        *,
        lane: str = "",
        lease: float | None = None,
    ) -> Outcome:
        """Claim the notification (for ``lease`` seconds; None: ``self.lease``) and make one
        attempt with ``send``; ``lane``, the queue its message came on, labels its latency in
        /metrics.

        An exception ``send`` does not handle is a bug (ours or a provider's), not the
        message's: the attempt counts as failed with a generic error, since the exception's
        text can quote the message, and is retried with backoff, so a fix that is deployed
        meanwhile still delivers.
        """
        claimed = self.claim(notification_id, lane=lane, lease=lease)
        if isinstance(claimed, Outcome):
            return claimed
        try:
            return send(claimed)
        except Unrecorded:
            raise  # no failed attempt: the provider took it (run_attempt retries, see sent)
        except Exception as e:
            return claimed.failed(f"internal error ({type(e).__name__})", provider=None, exc=e)

    def claim(
        self, notification_id: str, *, lane: str = "", lease: float | None = None
    ) -> Attempt | Outcome:
        """Claim the notification and load its payload; an Outcome when there is nothing to
        send."""
        store = self.store
        claim = store.claim(
            notification_id,
            lease=self.lease if lease is None else lease,
            max_attempts=self.max_attempts,
            lane=lane,
        )
        if claim.status == "busy":
            # A copy of this message is being handled (or its worker died holding the claim).
            return Outcome("busy", wait=claim.wait)
        if claim.status != "sending":
            # Already final (a redelivered message), cancelled, expired, or out of attempts.
            return Outcome("skipped", claim.attempt)
        if claim.payload is None:
            store.settle(notification_id, "failed", provider=None, error="message content expired")
            return Outcome("failed", claim.attempt)
        return Attempt(
            store,
            notification_id,
            claim.attempt,
            claim.payload,
            max_attempts=self.max_attempts,
            deadline=claim.payload.get("deadline"),
            unrecorded=claim.unrecorded,
        )


@dataclass(frozen=True)
class Attempt:
    """A claimed notification: the attempt number, what to send, and when it is too late to;
    ``unrecorded``, how many attempts before it may have sent it (their outcome never came).
    Its methods record what the attempt came to."""

    store: NotificationStore
    id: str
    attempt: int
    payload: dict[str, Any]
    max_attempts: int
    deadline: float | None = None
    unrecorded: int = 0

    def sent(
        self,
        provider: str,
        provider_ref: str | None = None,
        *,
        recipients: Sequence[str] = (),
        volume_of: str | None = None,
    ) -> Outcome:
        """Record a delivery, with the provider's id of the message when it gave one (and for
        a mail, its distinct ``recipients`` and the client whose guard counts it).

        When even the store's patience cannot record it, :class:`Unrecorded`: never a failed
        attempt, whose ``retrying`` a Redis back a moment later would take, and whose retry
        would send it again within seconds. The claim stays, the message comes back after its
        lease, and that attempt knows an earlier one's outcome never came."""
        try:
            self.store.settle(
                self.id, "sent", provider=provider, provider_ref=provider_ref,
                recipients=recipients, volume_of=volume_of,
            )  # fmt: skip
        except Exception as e:
            raise Unrecorded(f"{self.id}: sent by {provider}, but not recorded: {e}") from e
        log.info("%s sent by %s on attempt %d", self.id, provider, self.attempt)
        return Outcome("sent", self.attempt)

    def failed(self, error: str, *, provider: str | None, exc: Exception | None = None) -> Outcome:
        """Record a transient failure: ``retrying``, or ``failed`` once out of attempts.

        ``exc`` is an unexpected exception: logged as an error with its traceback.
        """
        final = self.attempt >= self.max_attempts
        log.log(
            logging.WARNING if exc is None else logging.ERROR,
            "%s attempt %d of %d failed: %s",
            self.id,
            self.attempt,
            self.max_attempts,
            error,
            exc_info=exc,
        )
        status = "failed" if final else "retrying"
        if self.store.settle(self.id, status, provider=provider, error=error):
            return Outcome("skipped", self.attempt)  # a cancelled batch's row: not retried
        return Outcome("failed" if final else "retry", self.attempt, deadline=self.deadline)

    def failed_for_good(self, e: ProviderError) -> Outcome:
        """Record a permanent failure."""
        return self.unsendable(str(e), provider=e.provider)

    def unsendable(self, error: str, *, provider: str | None = None) -> Outcome:
        """Record a failure no retry can mend; ``provider``, the one that refused, if any."""
        log.warning("%s failed for good: %s", self.id, error)
        self.store.settle(self.id, "failed", provider=provider, error=error)
        return Outcome("failed", self.attempt)

    def simulated(self, outcome: SimulatedOutcome) -> Outcome:
        """A test key's delivery: the outcome its recipient asks for, and no provider called."""
        try:
            ref, receipt = simulate(outcome, self.attempt)
        except PermanentProviderError as e:
            return self.failed_for_good(e)
        except TransientProviderError as e:
            return self.failed(str(e), provider=e.provider)
        done = self.sent(SIMULATOR, ref)
        if receipt is not None:
            error = "simulated: the handset did not take it" if receipt == "undelivered" else None
            self.store.receipt(SIMULATOR, ref, receipt, error=error)
        log.info("%s simulated for a test key: %s", self.id, outcome, extra={"mode": "test"})
        return done

    def hand_over(
        self,
        route: Sequence[P],
        send: Callable[[P], str],
        *,
        recipients: Sequence[str] = (),
        volume_of: str | None = None,
        limits_hand_over: bool = False,
    ) -> Outcome:
        """Give the notification to the first provider of ``route`` that takes it (``send``
        gives it to one and returns the provider's id of the message) and record what came of
        it (a mail's ``recipients`` and ``volume_of``: see :meth:`sent`).

        A provider that is down or throttling hands over to the next, as does one that cannot
        carry this message; a permanent refusal (a recipient no provider can reach) fails it for
        good. So does a vendor's per-number limit (its anti-abuse rule), unless
        ``limits_hand_over``: for a code, another provider or a retry would only help whoever
        asks for code after code; a client's own notification (a third order update of the day
        past Tencent's default of a few a number) is taken by the next provider, or retried as
        a provider that is down is. When every provider failed, the attempt failed (the error
        names each when there were several), and failed for good when none could carry it.
        """
        failures: list[TransientProviderError] = []
        cannot: list[NotForThisProvider] = []
        for provider in route:
            try:
                with tracing.provider_call(provider.name, self.id):
                    ref = send(provider)
            except NotForThisProvider as e:
                log.info("%s: %s cannot carry it: %s", self.id, e.provider, e)
                cannot.append(e)
                continue
            except PermanentProviderError as e:
                return self.failed_for_good(e)
            except TransientProviderError as e:
                if isinstance(e, RecipientThrottled) and not limits_hand_over:
                    return self.failed_for_good(e)
                if len(route) > 1:
                    log.warning("%s: %s failed, handing over: %s", self.id, e.provider, e)
                failures.append(e)
                continue
            return self.sent(provider.name, ref, recipients=recipients, volume_of=volume_of)
        if not failures and cannot:
            return self.failed_for_good(cannot[0])
        if not failures:
            return self.failed("no provider serves this recipient", provider=None)
        error = (
            str(failures[0])
            if len(failures) == 1
            else "; ".join(f"{e.provider}: {e}" for e in failures)
        )
        return self.failed(error, provider=failures[-1].provider)

"""Error reports to Sentry, when ``NOTIFIER_SENTRY_DSN`` is set, masked as the logs are.

An unhandled error of the web (the catch-all's logged traceback) and of a task (a failure, or an
attempt's unexpected error, logged at ERROR) becomes an event. What an event could carry that the
logs never do is left out (request bodies, local variables, personal data Sentry would add); what
is left goes through :func:`masked` on its way out: every string redacted (addresses, phone
numbers), URLs' tokens and query values masked, secrets and codes by their key.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from notifier.redact import redact_query, redact_url, scrub
from notifier.settings import Settings

if TYPE_CHECKING:
    from sentry_sdk.types import Event

# Keys whose values are never sent, wherever they are in an event (a header, a breadcrumb's data).
_SECRET_KEY = re.compile(
    r"^(authorization|proxy-authorization|cookie|set-cookie|code|token|password|secret)$",
    re.IGNORECASE,
)
_URL_KEYS = frozenset({"url", "http.url"})
_QUERY_KEYS = frozenset({"query_string", "http.query", "http.fragment"})


def start(settings: Settings) -> None:
    """Report this process's unhandled errors to ``settings.sentry_dsn``."""
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    assert settings.sentry_dsn is not None
    sentry_sdk.init(
        dsn=settings.sentry_dsn.get_secret_value(),
        environment=settings.env.value,
        # Errors only: no performance traces (the OTEL_* variables are for traces).
        traces_sample_rate=None,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        # Only the integrations named: others (Redis's, boto3's) would add breadcrumbs of their own.
        auto_enabling_integrations=False,
        # The messages stay as the direct push writes them: no Sentry headers in the Celery path.
        integrations=[FlaskIntegration(), CeleryIntegration(propagate_traces=False)],
        before_send=_before_send,
    )


def _before_send(event: Event, hint: dict[str, Any]) -> Event:
    return cast("Event", masked(event))


def masked(value: Any, key: str = "") -> Any:
    """``value`` (an event, or part of one) with personal data, tokens and secrets masked."""
    if isinstance(value, str):
        if key in _QUERY_KEYS:
            return redact_query(value)
        return redact_url(value) if key in _URL_KEYS else scrub(value)
    if isinstance(value, dict):
        return {
            k: "[Filtered]" if _SECRET_KEY.match(str(k)) else masked(v, str(k))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        # Headers come as [name, value] pairs in some events.
        if len(value) == 2 and isinstance(value[0], str) and _SECRET_KEY.match(value[0]):
            return [value[0], "[Filtered]"]
        return [masked(v, key) for v in value]
    return value

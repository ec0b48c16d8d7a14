"""Traces (OpenTelemetry), off unless the standard ``OTEL_*`` variables turn them on.

On in a process when :func:`wanted` says so (README "Traces"); then :func:`start` runs in each
process after it forked (gunicorn's ``post_fork``, Celery's ``worker_init``): the exporter's
thread and connections belong to the process that sends. Off, nothing of OpenTelemetry is
imported, and :func:`span` and :func:`carry` cost a check of one flag.

What leaves the process is masked on the way out (:func:`scrubbing`): every string in every
attribute and event through :func:`notifier.redact.scrub` (addresses, phone numbers, and the
query values of a URL an error quotes), and the query strings and token path segments of URL
attributes (the receipt routes' ``?token=``, unsubscribe links). Redis commands are recorded without their arguments (the instrumentation's default).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping, MutableMapping, Sequence
from typing import TYPE_CHECKING, Any

from notifier.redact import redact_query, redact_url, scrub

if TYPE_CHECKING:
    from flask import Flask
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
    from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
    from opentelemetry.trace import Link, SpanKind
    from opentelemetry.util.types import Attributes

log = logging.getLogger(__name__)
# The exporters this service ships; OTEL_TRACES_EXPORTER may name these (or "none").
EXPORTERS = ("otlp", "console")
# The tasks beat starts every second: not traced, or there would be a trace a second.
QUIET = frozenset({"run/dispatch_due"})
# The mark a quiet task's context carries: a task it queues is traced on its own.
_QUIET_STATE = ("notifier", "quiet")
_URL_KEYS = frozenset({"http.url", "http.target", "url.full", "url.path", "url.query"})
_SECRET_KEY = re.compile(r"authorization|cookie|api[-_]key", re.IGNORECASE)

_started: int | None = None  # the pid of the process whose traces go out


def wanted(environ: Mapping[str, str] = os.environ) -> list[str]:
    """The exporters the environment asks for; empty when traces are off.

    ``OTEL_SDK_DISABLED=true`` turns them off; else ``OTEL_TRACES_EXPORTER`` decides when set
    (``none``: off); else an ``OTEL_EXPORTER_OTLP_ENDPOINT`` or ``…_TRACES_ENDPOINT`` means OTLP.
    """
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    named = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if named:
        chosen = [e.strip() for e in named.split(",")]
        for unknown in set(chosen) - {*EXPORTERS, "none", ""}:
            log.warning("OTEL_TRACES_EXPORTER: %s is not one this service has; ignored", unknown)
        return [e for e in EXPORTERS if e in chosen]
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(environ.get(name, "").strip() for name in endpoints) else []


def start(app: Flask, role: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Send this process's traces, as service ``notifier-<role>`` unless OTEL_SERVICE_NAME says.

    Instruments Celery, requests, urllib3, the runtime's Redis clients and (``web``) the Flask
    app. Does nothing when :func:`wanted` is empty, or a second time in one process.
    """
    global _started
    exporters = wanted(environ)
    if not exporters or _started == os.getpid():
        return False
    from opentelemetry import trace
    from opentelemetry.instrumentation.celery import CeleryInstrumentor
    from opentelemetry.instrumentation.redis import RedisInstrumentor
    from opentelemetry.instrumentation.requests import RequestsInstrumentor
    from opentelemetry.instrumentation.urllib3 import URLLib3Instrumentor
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import _get_from_env_or_default

    resource = Resource.create({"notifier.role": role})
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: f"notifier-{role}"}))
    provider = TracerProvider(resource=resource, sampler=_quieted(_get_from_env_or_default()))
    for name in exporters:
        provider.add_span_processor(BatchSpanProcessor(scrubbing(_exporter(name))))
    trace.set_tracer_provider(provider)
    CeleryInstrumentor().instrument()  # type: ignore[no-untyped-call]
    _end_each_task_clean()
    RequestsInstrumentor().instrument()
    URLLib3Instrumentor().instrument()
    rt = app.extensions["notifier"]
    # Only our own clients: kombu's polling of a Redis broker would be a trace a second each.
    for client in rt.redis_clients():
        RedisInstrumentor.instrument_client(client)
    if role == "web":
        from opentelemetry.instrumentation.flask import FlaskInstrumentor

        FlaskInstrumentor.instrument_app(app, excluded_urls="healthz,readyz,metrics")  # type: ignore[no-untyped-call]
    _started = os.getpid()
    return True


def _end_each_task_clean() -> None:
    """Leave a worker thread with no current span once each task has run.

    A task that retries (Celery republishes from inside the running task) makes the Celery
    instrumentation detach a context that is no longer current: the API logs "Failed to detach
    context" at ERROR and the thread keeps the task's span as its current one (the family of
    open-telemetry/opentelemetry-python-contrib#2855 and #2927). The next task the thread runs
    without a context of its own (beat's dispatch) would then join that trace. So after the
    instrumentation's own handler, the thread's context is set empty; and that logger, which
    would make every retry an error line (and, with Sentry on, an event), speaks only for what
    is worse.
    """
    from celery.signals import task_postrun
    from opentelemetry import context

    def clean(**_: Any) -> None:
        context.attach(context.Context())  # the token is not needed: nothing to go back to

    task_postrun.connect(clean, weak=False)  # after the instrumentation's: it runs last
    logging.getLogger("opentelemetry.context").setLevel(logging.CRITICAL)


def _exporter(name: str) -> SpanExporter:
    if name == "console":
        from opentelemetry.sdk.trace.export import ConsoleSpanExporter

        return ConsoleSpanExporter()
    # OTLP over HTTP with protobuf; its OTEL_EXPORTER_OTLP_* variables are read by the exporter.
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter()


@contextlib.contextmanager
def span(name: str, attributes: Mapping[str, str | int] | None = None) -> Iterator[None]:
    """A span of ours around a block (nothing when traces are off)."""
    if _started != os.getpid():
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer(__name__).start_as_current_span(name, attributes=dict(attributes or {})):
        yield


def carry(headers: MutableMapping[str, Any]) -> None:
    """Put the current trace context in a task message's headers (the direct push's)."""
    if _started != os.getpid():
        return
    from opentelemetry import propagate

    propagate.inject(headers)


def provider_call(provider: str, notification_id: str) -> contextlib.AbstractContextManager[None]:
    """The span around one provider's attempt at one notification."""
    return span(
        "provider send",
        {"notifier.provider": provider, "notifier.notification_id": notification_id},
    )


def _quieted(inner: Sampler) -> Sampler:
    """``inner``, except that :data:`QUIET` tasks are not traced, nor what they do.

    A task such a task queues (a scheduled mail that came due) carries the quiet mark in its
    trace state, and its run is sampled as a trace of its own.
    """
    from opentelemetry import trace
    from opentelemetry.sdk.trace.sampling import Decision, Sampler, SamplingResult
    from opentelemetry.trace import SpanKind, TraceState

    class Quiet(Sampler):
        def should_sample(
            self,
            parent_context: Context | None,
            trace_id: int,
            name: str,
            kind: SpanKind | None = None,
            attributes: Attributes = None,
            links: Sequence[Link] | None = None,
            trace_state: TraceState | None = None,
        ) -> SamplingResult:
            parent = trace.get_current_span(parent_context).get_span_context()
            quiet_parent = parent.is_valid and parent.trace_state.get(_QUIET_STATE[0]) == "quiet"
            if name in QUIET and not parent.is_valid:
                return SamplingResult(Decision.DROP, trace_state=TraceState([_QUIET_STATE]))
            if quiet_parent and kind is not SpanKind.CONSUMER:
                return SamplingResult(Decision.DROP, trace_state=parent.trace_state)
            # A run queued by a quiet task decides as a root would (None: no parent).
            context = None if quiet_parent else parent_context
            return inner.should_sample(context, trace_id, name, kind, attributes, links)

        def get_description(self) -> str:
            return f"Quiet({inner.get_description()})"

    return Quiet()


def scrubbing(inner: SpanExporter) -> SpanExporter:
    """An exporter that passes spans on to ``inner`` with personal data and tokens masked."""
    # The class is made here, not at import, so that nothing of the SDK loads when off.
    from opentelemetry.sdk.trace import Event, ReadableSpan
    from opentelemetry.sdk.trace.export import SpanExporter
    from opentelemetry.trace import Status

    class _Scrubbed(SpanExporter):
        def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
            return inner.export([_clean(s) for s in spans])

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return inner.force_flush(timeout_millis)

    def _clean(s: ReadableSpan) -> ReadableSpan:
        return ReadableSpan(
            name=scrub(s.name),
            context=s.context,
            parent=s.parent,
            resource=s.resource,
            attributes=scrubbed(s.attributes),
            events=[Event(e.name, scrubbed(e.attributes), e.timestamp) for e in s.events],
            links=s.links,
            kind=s.kind,
            status=Status(
                s.status.status_code, s.status.description and scrub(s.status.description)
            ),
            start_time=s.start_time,
            end_time=s.end_time,
            instrumentation_scope=s.instrumentation_scope,
        )

    return _Scrubbed()


def scrubbed(attributes: Attributes) -> dict[str, Any]:
    """Attributes with addresses, phone numbers, URL tokens and query values masked."""
    clean: dict[str, Any] = {}
    for key, value in (attributes or {}).items():
        if _SECRET_KEY.search(key):
            clean[key] = "[redacted]"
        elif isinstance(value, str):
            clean[key] = _masked(key, value)
        elif isinstance(value, tuple | list):
            clean[key] = tuple(scrub(v) if isinstance(v, str) else v for v in value)
        else:
            clean[key] = value
    return clean


def _masked(key: str, value: str) -> str:
    if key == "url.query":  # the query alone, without its "?"
        return redact_query(value)
    return redact_url(value) if key in _URL_KEYS else scrub(value)

"""A local OTLP/HTTP receiver: takes ``POST /v1/traces`` (protobuf) and keeps the spans."""

from __future__ import annotations

import gzip
import zlib
from dataclasses import dataclass
from typing import Any

from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tests.support.peers.http_peer import JsonPeer, Reply, Request


@dataclass(frozen=True)
class ReceivedSpan:
    """One span as it arrived, with its process's service name."""

    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: str
    raw: dict[str, Any]  # the span as OTLP's JSON mapping writes it, attributes and events


def decoded(body: bytes, encoding: str) -> bytes:
    """A request body as it was before the sender compressed it."""
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


class OtlpReceiver(JsonPeer[None]):
    """An OpenTelemetry collector's OTLP/HTTP trace endpoint, in memory."""

    def __init__(self) -> None:
        super().__init__()
        self.spans: list[ReceivedSpan] = []

    def answer(self, request: Request) -> Reply:
        if request.method != "POST" or request.path != "/v1/traces":
            return Reply(404, {})
        export = ExportTraceServiceRequest.FromString(
            decoded(request.body, request.headers.get("content-encoding", ""))
        )
        with self.lock:
            for resource_spans in export.resource_spans:
                service = next(
                    a.value.string_value
                    for a in resource_spans.resource.attributes
                    if a.key == "service.name"
                )
                for scope in resource_spans.scope_spans:
                    self.spans += [_received(service, s) for s in scope.spans]
        # An empty ExportTraceServiceResponse: no partial success to report.
        return Reply(200, {}, "application/json")

    def received(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)


def _received(service: str, span: Any) -> ReceivedSpan:
    return ReceivedSpan(
        service=service,
        name=span.name,
        trace_id=span.trace_id.hex(),
        span_id=span.span_id.hex(),
        parent_span_id=span.parent_span_id.hex(),
        kind=str(span.kind),
        raw=MessageToDict(span),
    )

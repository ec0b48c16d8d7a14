"""When traces are on, and what the span scrubber and the Sentry hook leave of personal data."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from notifier.sentry import masked
from notifier.tracing import scrubbed, wanted

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("environ", "exporters"),
    [
        ({}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}, []),
        ({"OTEL_TRACES_EXPORTER": "zipkin,otlp"}, ["otlp"]),
    ],
)
def test_traces_are_on_only_when_the_standard_variables_say(
    environ: dict[str, str], exporters: list[str]
) -> None:
    assert wanted(environ) == exporters


def test_span_attributes_lose_addresses_numbers_and_url_tokens() -> None:
    clean = scrubbed(
        {
            "exception.message": "SMTP 550: <ada@example.com> unknown; call +8613800138000",
            "url.full": "https://n.example/v1/receipts/aliyun?token=s3cret&x=1",
            "http.target": "/v1/unsubscribe/AbCdEf123",
            "url.query": "token=s3cret",
            "http.request.header.authorization": ("Bearer key",),
            "server.port": 25,
        }
    )
    assert clean == {
        "exception.message": "SMTP 550: <a***@example.com> unknown; call +86*********00",
        "url.full": "https://n.example/v1/receipts/aliyun?token=[redacted]&x=[redacted]",
        "http.target": "/v1/unsubscribe/[redacted]",
        "url.query": "token=[redacted]",
        "http.request.header.authorization": "[redacted]",
        "server.port": 25,
    }


def test_a_sentry_event_is_masked_throughout() -> None:
    event = {
        "exception": {"values": [{"type": "ValueError", "value": "bad ada@example.com"}]},
        "breadcrumbs": {"values": [{"message": "to +8613800138000", "data": {"code": "482913"}}]},
        "request": {
            "url": "https://n.example/v1/unsubscribe/AbCd",
            "query_string": "token=s3cret",
            "headers": [["Authorization", "Bearer key"]],
        },
        "extra": {"celery-job": {"args": ["id-1"]}},
    }
    assert masked(event) == {
        "exception": {"values": [{"type": "ValueError", "value": "bad a***@example.com"}]},
        "breadcrumbs": {
            "values": [{"message": "to +86*********00", "data": {"code": "[Filtered]"}}]
        },
        "request": {
            "url": "https://n.example/v1/unsubscribe/[redacted]",
            "query_string": "token=[redacted]",
            "headers": [["Authorization", "[Filtered]"]],
        },
        "extra": {"celery-job": {"args": ["id-1"]}},
    }


def test_a_url_an_error_quotes_has_its_query_values_masked_in_spans_and_sentry() -> None:
    # A client's callback URL with a token in its query, its receiver down: requests' error
    # quotes the URL, and the requests instrumentation records that text on its span.
    error = "Max retries exceeded with url: /cb?key=SECRETKEY&to=%2B8613800138000 (refused)"
    clean = scrubbed({"exception.message": error})["exception.message"]
    assert clean == "Max retries exceeded with url: /cb?key=[redacted]&to=[redacted] (refused)"
    event = {
        "exception": {"values": [{"type": "ConnectionError", "value": error}]},
        "breadcrumbs": {"values": [{"data": {"http.fragment": "tok=FRAGSECRET"}}]},
    }
    shown = str(masked(event))
    assert "SECRETKEY" not in shown and "8613800138000" not in shown
    assert "FRAGSECRET" not in shown


def test_nothing_of_either_sdk_is_imported_when_off() -> None:
    # (redis-py 8 loads opentelemetry's API and SDK itself when they are installed.)
    ours = ("opentelemetry.instrumentation", "opentelemetry.exporter", "sentry_sdk")
    code = (
        "import sys, notifier.api, notifier.tasks, notifier.celery_ext, notifier.runtime;"
        f"print(sorted(m for m in sys.modules if m.startswith({ours!r})))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert found.stdout.strip() == "[]"

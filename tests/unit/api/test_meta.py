"""/openapi.json, /docs and /metrics."""

from __future__ import annotations

import re

from flask import Flask
from flask.testing import FlaskClient

from notifier.api.openapi import routes
from tests.support.harness.api import MAIL
from tests.support.harness.clients import auth


def test_the_document_names_exactly_the_routes_the_app_has(app: Flask, client: FlaskClient) -> None:
    served = {
        (
            method.lower(),
            re.sub(r"<(\w+:)?(\w+)>", r"{\2}", rule.rule).replace("{notification_id}", "{id}"),
        )
        for rule in app.url_map.iter_rules()
        for method in rule.methods or ()
        if method not in ("HEAD", "OPTIONS")
        and rule.endpoint not in ("static", "meta.docs_script", "meta.docs_asset")
        and not rule.endpoint.startswith("console")  # the operators' pages: not the API
    }
    assert {(method, path) for method, path, _ in routes(app)} == served
    # The route for any upload store is listed once a store, with that store's body.
    stores = app.extensions["notifier"].uploads
    served = {
        (method, path.replace("{store}", store))
        for method, path in served
        for store in (stores if "{store}" in path else ["{store}"])
    }
    spec = client.get("/openapi.json").get_json()
    documented = {(method, path) for path, methods in spec["paths"].items() for method in methods}
    assert documented == served


def test_the_document_is_openapi_with_bearer_auth_and_problems(client: FlaskClient) -> None:
    spec = client.get("/openapi.json").get_json()
    assert spec["openapi"] == "3.1.0"
    assert spec["components"]["securitySchemes"]["bearer"] == {"type": "http", "scheme": "bearer"}
    mail = spec["paths"]["/v1/mail"]["post"]
    assert (
        mail["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        == "#/components/schemas/MailRequest"
    )
    assert (
        mail["responses"]["422"]["content"]["application/problem+json"]["schema"]["$ref"]
        == "#/components/schemas/Problem"
    )
    assert "Retry-After" in mail["responses"]["429"]["headers"]
    assert spec["paths"]["/healthz"]["get"]["security"] == []
    assert set(spec["components"]["schemas"]["MailRequest"]["properties"]) >= {
        "to",
        "subject",
        "send_at",
    }


def test_docs_page_and_its_script_are_served_here(client: FlaskClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200 and page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sources and all(s.startswith("/") for s in sources), sources  # nothing from elsewhere
    script = client.get("/docs/docs.js")
    assert script.status_code == 200
    assert "/openapi.json" in script.get_data(as_text=True)


def test_a_made_up_method_is_counted_as_other_not_as_a_series_of_its_own(
    client: FlaskClient,
) -> None:
    for method in ("XYZZY", "PURGE", "FOOBAR"):
        assert client.open("/v1/mail", method=method).status_code == 405
    text = client.get("/metrics").get_data(as_text=True)
    assert not re.search(r'method="(XYZZY|PURGE|FOOBAR)"', text)
    assert re.search(
        r'notifier_http_requests_total\{method="other",route="unmatched",status="405"\} [3-9]', text
    ), [line for line in text.splitlines() if "requests_total" in line]


def test_metrics_count_requests_and_notifications(client: FlaskClient) -> None:
    client.post("/v1/mail", json=MAIL, headers=auth())
    client.post("/v1/mail", json={}, headers=auth())
    text = client.get("/metrics").get_data(as_text=True)
    assert re.search(
        r'notifier_http_requests_total\{method="POST",route="/v1/mail",status="202"\} [1-9]', text
    )
    assert re.search(
        r'notifier_http_requests_total\{method="POST",route="/v1/mail",status="422"\} [1-9]', text
    )
    assert (
        'notifier_http_request_duration_seconds_bucket{le="0.001",method="POST",route="/v1/mail"}'
        in text
    )
    assert "notifier_redis_up 1.0" in text
    assert 'notifier_queue_depth{queue="mail"} 1.0' in text
    assert 'notifier_queue_depth{queue="captcha"} 0.0' in text
    assert "notifier_scheduled 0.0" in text


def test_request_id_is_echoed_or_made(client: FlaskClient) -> None:
    assert (
        client.get("/healthz", headers={"X-Request-Id": "abc-123"}).headers["X-Request-Id"]
        == "abc-123"
    )
    made = client.get("/healthz", headers={"X-Request-Id": "no spaces allowed"}).headers[
        "X-Request-Id"
    ]
    assert re.fullmatch(r"[0-9a-f]{32}", made)

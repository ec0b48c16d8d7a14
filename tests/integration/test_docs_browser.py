"""/docs in a real headless Chromium: Swagger UI renders every route of /openapi.json, offline,
and "Try it out" with the key from "Authorize" sends a real request."""

from __future__ import annotations

import json

import pytest
import requests

from tests.support.harness.clients import KEYS
from tests.support.harness.stack import Stack
from tests.support.peers.chromium import Page

pytestmark = [pytest.mark.integration, pytest.mark.browser]

# Sets a React-controlled field as typing would: through the element's own value setter.
TYPE = """
window.typeInto = (field, text) => {
  const setter = Object.getOwnPropertyDescriptor(Object.getPrototypeOf(field), "value").set;
  setter.call(field, text);
  field.dispatchEvent(new Event("input", {bubbles: true}));
  field.dispatchEvent(new Event("change", {bubbles: true}));
};
true
"""


def test_docs_lists_every_route(stack: Stack, page: Page) -> None:
    spec = requests.get(f"{stack.base}/openapi.json", timeout=10).json()
    operations = {
        op["operationId"] for methods in spec["paths"].values() for op in methods.values()
    }
    page.goto(f"{stack.base}/docs")
    page.wait_for(f"document.querySelectorAll('.opblock').length === {len(operations)}")
    shown = page.evaluate("[...document.querySelectorAll('.opblock')].map((e) => e.id)")
    assert {name.removeprefix("operations-default-") for name in shown} == operations
    assert page.evaluate("document.querySelector('.info .title').textContent").startswith(
        "Notifier"
    )


def test_try_it_out_sends_a_real_request_with_the_key(stack: Stack, page: Page) -> None:
    page.goto(f"{stack.base}/docs")
    page.wait_for("document.querySelector('#operations-default-post_v1_mail')")
    page.evaluate(TYPE)
    # The key box: Authorize, paste the key, Authorize, close.
    page.evaluate("document.querySelector('.auth-wrapper .authorize').click()")
    page.wait_for("document.querySelector('.modal-ux input')")
    page.evaluate(
        f"typeInto(document.querySelector('.modal-ux input'), {json.dumps(KEYS['tester'])})"
    )
    page.evaluate("document.querySelector('.modal-ux .auth-btn-wrapper .authorize').click()")
    page.wait_for("document.querySelector('.modal-ux .auth-btn-wrapper .btn-done')")
    page.evaluate("document.querySelector('.modal-ux .auth-btn-wrapper .btn-done').click()")
    # POST /v1/mail: open it, Try it out, a body, Execute.
    page.evaluate(
        "document.querySelector('#operations-default-post_v1_mail .opblock-summary-control').click()"
    )
    page.wait_for("document.querySelector('#operations-default-post_v1_mail .try-out__btn')")
    page.evaluate(
        "document.querySelector('#operations-default-post_v1_mail .try-out__btn').click()"
    )
    page.wait_for(
        "document.querySelector('#operations-default-post_v1_mail textarea.body-param__text')"
    )
    body = {"to": ["ada@example.com"], "subject": "From the docs", "text": "Tried it out."}
    page.evaluate(
        "typeInto(document.querySelector('#operations-default-post_v1_mail textarea.body-param__text'),"
        f" {json.dumps(json.dumps(body))})"
    )
    page.evaluate("document.querySelector('#operations-default-post_v1_mail .execute').click()")
    status = page.wait_for(
        "document.querySelector('#operations-default-post_v1_mail .live-responses-table"
        " tr.response .response-col_status')?.textContent.trim()"
    )
    answer = page.evaluate(
        "document.querySelector('#operations-default-post_v1_mail .live-responses-table"
        " .response-col_description pre')?.textContent"
    )
    assert status == "202", answer
    notification = json.loads(answer)["id"]
    # The request really reached the service, under the key typed into the box.
    assert stack.wait_status(notification, "sent")["status"] == "sent"

"""Fuzzing the running service from its own OpenAPI document (schemathesis + hypothesis).

Every operation gets generated requests, valid and not, through gunicorn into a real Redis and
worker: no answer may be a 5xx, every error must be problem+json, every answer must match the
document. Bounded (``EXAMPLES`` an operation), so CI stays within its budget.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import positive_data_acceptance
from schemathesis.core.errors import InvalidSchema
from schemathesis.core.result import Err, Result
from schemathesis.schemas import APIOperation

from tests.support.harness.clients import auth
from tests.support.harness.stack import Stack

pytestmark = pytest.mark.integration
EXAMPLES = 50


# What schemathesis itself yields: operations of any parameter, response and schema kind.
Operation = APIOperation[Any, Any, Any, Any]


def read_operation(result: Result[Operation, InvalidSchema]) -> Operation:
    """The operation schemathesis read, or the error it met reading it."""
    if isinstance(result, Err):
        raise result.err()
    return result.ok()


def test_every_operation_answers_as_documented(stack: Stack) -> None:
    schema = schemathesis.openapi.from_url(f"{stack.base}/openapi.json")
    operations = [read_operation(result) for result in schema.get_all_operations()]
    labels = {op.label for op in operations}
    assert {"POST /v1/mail", "POST /v1/sms/captcha", "POST /v1/uploads/qiniu/token"} <= labels, (
        labels
    )

    for operation in operations:

        @given(case=operation.as_strategy())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case: Any) -> None:
            # A body the document allows can still be refused: it states each field's rules, but
            # not the rules across fields or about the world (1-50 recipients in to, cc and bcc
            # together; a template that exists; send_at within 30 days). Everything else holds,
            # including that every body the document forbids is refused.
            response = case.call_and_validate(
                headers=auth(), excluded_checks=[positive_data_acceptance]
            )
            assert response.status_code < 500
            if response.status_code >= 400:
                headers = {k.lower(): v for k, v in response.headers.items()}
                kind = headers["content-type"]
                kind = kind[0] if isinstance(kind, list) else kind
                answers = case.operation.definition.raw["responses"]
                if "text/html" in answers.get(str(response.status_code), {}).get("content", {}):
                    assert kind.startswith("text/html")  # a page, for a person (unsubscribe)
                else:
                    assert kind == "application/problem+json"

        check()

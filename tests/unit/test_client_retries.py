"""notifier_client's retries and errors, against httpx's MockTransport: what is retried, with
which key, after how long, and what is raised when it is not."""

from __future__ import annotations

import asyncio
import email.utils
import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import notifier_client as nc
import pytest
from notifier_client._calls import Retries, attempts, send_mail, verify_captcha

ACCEPTED = {"id": "n1", "status": "queued", "links": {"self": "/v1/notifications/n1"}}
Handler = Callable[[httpx.Request], httpx.Response]


def problem(status: int, retry_after: str | None = None, **fields: Any) -> httpx.Response:
    """The service's error answer: problem+json (RFC 9457)."""
    body = {"type": "about:blank", "title": "T", "status": status, "detail": "d", "errors": []}
    headers = {"Content-Type": "application/problem+json"}
    if retry_after is not None:
        headers["Retry-After"] = retry_after
    return httpx.Response(status, content=json.dumps({**body, **fields}), headers=headers)


class Script:
    """Answers the requests in order from ``answers`` (a response, or an exception to raise),
    and keeps each request."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    @property
    def keys(self) -> list[str | None]:
        return [r.headers.get("Idempotency-Key") for r in self.requests]


def client(script: Handler, **settings: Any) -> nc.Client:
    quick: dict[str, Any] = {"backoff_base": 0.001, "backoff_cap": 0.01, **settings}
    return nc.Client(
        "http://notifier.test", "ntf_k", transport=httpx.MockTransport(script), **quick
    )


def test_a_send_retried_after_503_429_and_a_reset_carries_one_key_throughout() -> None:
    script = Script(
        problem(503, "0"),
        problem(429, "0"),
        httpx.ReadError("connection reset"),
        httpx.Response(202, json=ACCEPTED, headers={"Idempotent-Replayed": "true"}),
    )
    accepted = client(script).send_mail(to=["a@example.com"], subject="Hi", text="x")
    assert len(script.requests) == 4
    (key,) = set(script.keys)
    assert key is not None and len(key) == 36  # a uuid4, made once for the send
    assert accepted == nc.Accepted("n1", "queued", idempotency_key=key, replayed=True)
    assert {r.headers["Authorization"] for r in script.requests} == {"Bearer ntf_k"}


def test_a_send_whose_first_try_is_still_being_handled_asks_again_with_its_key() -> None:
    """A retry after a timeout found the first request still running (409 with Retry-After):
    asked again with the same key, it gets that request's answer; a 409 without Retry-After (the
    key reused with another body) is raised at once."""
    script = Script(
        httpx.ReadTimeout("slow"),
        problem(409, "0", detail="a request with this Idempotency-Key is still being handled"),
        httpx.Response(202, json=ACCEPTED, headers={"Idempotent-Replayed": "true"}),
    )
    accepted = client(script).send_mail(to=["a@example.com"], text="x")
    assert accepted.replayed and len(set(script.keys)) == 1 and len(script.requests) == 3
    reused = Script(problem(409))
    with pytest.raises(nc.Conflict):
        client(reused).send_mail(to=["a@example.com"], text="x", idempotency_key="order-1")
    assert len(reused.requests) == 1


def test_each_send_has_a_key_of_its_own_and_the_callers_key_is_used_as_given() -> None:
    script = Script(*[httpx.Response(202, json=ACCEPTED)] * 3)
    sender = client(script)
    sender.send_mail(to=["a@example.com"], text="x")
    sender.send_mail(to=["a@example.com"], text="x")
    sender.send_mail(to=["a@example.com"], text="x", idempotency_key="order-42")
    first, second, third = script.keys
    assert first != second and third == "order-42"


def test_retries_run_out_into_the_last_error() -> None:
    script = Script(*[problem(503, "0", detail="Redis is down")] * 3)
    with pytest.raises(nc.Unavailable) as raised:
        client(script, max_retries=2).send_mail(to=["a@example.com"], text="x")
    assert len(script.requests) == 3
    assert (raised.value.status, raised.value.detail, raised.value.retry_after) == (
        503,
        "Redis is down",
        0.0,
    )


def test_a_retry_after_longer_than_allowed_is_raised_at_once_with_its_seconds() -> None:
    script = Script(problem(429, "60", detail="resend interval"))
    with pytest.raises(nc.RateLimited) as raised:
        client(script, max_retry_after=10).send_mail_captcha("a@example.com", "login")
    assert len(script.requests) == 1
    assert raised.value.retry_after == 60


def test_the_wait_is_never_shorter_than_retry_after_and_jitter_stays_under_the_cap() -> None:
    retries = Retries(max_retries=5, backoff_base=0.5, backoff_cap=2.0, max_retry_after=10)
    call = send_mail({"to": ["a@example.com"]}, None)
    asked = problem(429, "3")
    assert all(retries.wait(call, n, asked) == 3.0 for n in range(3))  # the draw is at most 2
    draws = [retries.wait(call, 4, httpx.ConnectError("refused")) for _ in range(200)]
    assert all(d is not None and 0 <= d <= 2.0 for d in draws)
    assert len(set(draws)) > 100  # jittered, not one fixed delay
    assert retries.wait(call, 5, asked) is None  # out of retries


def test_a_verify_is_not_repeated_once_it_may_have_reached_the_service() -> None:
    for failure in (problem(503, "0"), httpx.ReadError("reset after the request went out")):
        script = Script(failure, httpx.Response(200, json={"valid": True}))
        with pytest.raises((nc.Unavailable, nc.ConnectionFailed)):
            client(script).verify_sms_captcha("+8613800138000", "login", "123456")
        assert len(script.requests) == 1


def test_a_verify_whose_connection_was_refused_is_sent_again() -> None:
    script = Script(httpx.ConnectError("refused"), httpx.Response(200, json={"valid": True}))
    assert client(script).verify_mail_captcha("a@example.com", "login", "1") == nc.Verdict(True)
    assert len(script.requests) == 2


def test_a_read_is_retried_after_a_timeout_and_a_timeout_to_the_end_is_timed_out() -> None:
    record = {
        "id": "n1", "kind": "mail", "status": "sent", "attempts": 1, "provider": "smtp",
        "error": None, "created_at": "2026-11-22T03:00:00.000Z",
        "updated_at": "2026-11-22T03:00:01.5Z", "send_at": None, "reference": None,
        "provider_ref": "<m@x>", "a_field_added_later": 1,
    }  # fmt: skip
    script = Script(httpx.ReadTimeout("slow"), httpx.Response(200, json=record))
    found = client(script).get_notification("n1")
    assert (found.status, found.created_at.tzinfo is not None) == ("sent", True)
    assert found.updated_at.microsecond == 500000
    with pytest.raises(nc.TimedOut) as raised:
        client(Script(*[httpx.ReadTimeout("slow")] * 2), max_retries=1).get_notification("n1")
    assert isinstance(raised.value.__cause__, httpx.ReadTimeout)


def test_a_problem_is_raised_with_its_fields_and_an_html_answer_with_what_it_said() -> None:
    errors = [{"loc": ["body", "to", 0], "msg": "not an address"}]
    with pytest.raises(nc.ValidationFailed) as raised:
        client(Script(problem(422, errors=errors))).send_mail(to=["nope"], text="x")
    assert raised.value.errors == (nc.FieldError(("body", "to", 0), "not an address"),)
    assert isinstance(raised.value, nc.APIError) and raised.value.status == 422
    gateway = httpx.Response(502, text="<html>Bad Gateway</html>")
    with pytest.raises(nc.Unavailable) as failed:
        client(Script(gateway), max_retries=0).get_batch("b1")
    assert (failed.value.title, failed.value.detail) == ("Bad Gateway", "<html>Bad Gateway</html>")


def test_a_missing_suppression_is_none_and_a_missing_notification_is_not_found() -> None:
    missing = problem(404, detail="'a@example.com' is not on the suppression list")
    assert client(Script(missing)).get_suppression("a@example.com") is None
    with pytest.raises(nc.NotFound):
        client(Script(problem(404))).get_notification("n1")


def test_a_404_that_is_not_the_services_is_not_found_even_for_a_suppression() -> None:
    """A wrong base URL (a proxy's HTML 404) must not answer "not on the list": the caller
    would mail an address that is."""
    page = httpx.Response(404, text="<html>Not Found</html>", headers={"Content-Type": "text/html"})
    with pytest.raises(nc.NotFound) as raised:
        client(Script(page)).get_suppression("a@example.com")
    assert raised.value.detail == "<html>Not Found</html>"
    # The service's own 404 for a path it does not serve (a base URL ending in /v1): NotFound.
    unknown = problem(404, detail="The requested URL was not found on the server.")
    with pytest.raises(nc.NotFound):
        client(Script(unknown)).get_suppression("a@example.com")


def test_an_http_date_retry_after_is_counted_from_now() -> None:
    """A proxy's 503 may say when as a date (RFC 9110): an hour ahead is raised at once with
    its seconds, not retried as if it had said nothing."""
    in_an_hour = email.utils.format_datetime(datetime.now(UTC) + timedelta(hours=1), usegmt=True)
    script = Script(problem(503, in_an_hour))
    with pytest.raises(nc.Unavailable) as raised:
        client(script).get_notification("n1")
    assert len(script.requests) == 1
    assert raised.value.retry_after is not None and 3590 < raised.value.retry_after <= 3600
    past = email.utils.format_datetime(datetime.now(UTC) - timedelta(hours=1), usegmt=True)
    assert nc.errors.retry_after(problem(503, past)) == 0.0
    assert nc.errors.retry_after(problem(503, "soon")) is None


def test_an_http_date_without_a_zone_is_gmt_wherever_the_client_runs(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """asctime's form (and -0000) names no zone: an HTTP date is GMT all the same."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        soon = (datetime.now(UTC) + timedelta(seconds=120)).strftime("%a %b %d %H:%M:%S %Y")
        asked = nc.errors.retry_after(problem(503, soon))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert asked is not None and 100 < asked <= 120


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, text="<html>Sign in to the Wi-Fi</html>"),
        httpx.Response(200, json={"id": "n1"}),  # a field the record must have is missing
        httpx.Response(200, json=["n1"]),
    ],
)
def test_a_success_that_is_not_the_routes_answer_is_unexpected_response(
    answer: httpx.Response,
) -> None:
    with pytest.raises(nc.UnexpectedResponse) as raised:
        client(Script(answer)).get_notification("n1")
    assert isinstance(raised.value, nc.NotifierError) and raised.value.status == 200


@pytest.mark.parametrize("key", ["clé", "a" * 256, "line\nbreak"])
def test_an_idempotency_key_the_service_would_refuse_is_a_value_error_before_any_request(
    key: str,
) -> None:
    script = Script()
    with pytest.raises(ValueError, match="idempotency_key"):
        client(script).send_mail(to=["a@example.com"], text="x", idempotency_key=key)
    assert script.requests == []


def test_a_retry_of_a_suppression_logs_the_route_not_the_address(
    caplog: pytest.LogCaptureFixture,
) -> None:
    missing = problem(404, detail="'ada.lovelace+bank@example.com' is not on the suppression list")
    script = Script(problem(503, "0"), missing)
    with caplog.at_level("INFO", logger="notifier_client"):
        assert client(script).get_suppression("ada.lovelace+bank@example.com") is None
    (logged,) = [r.getMessage() for r in caplog.records if r.name == "notifier_client"]
    assert "/v1/suppressions/{address}" in logged and "ada" not in logged, logged


def test_rows_are_paged_to_the_end_with_the_cursor_each_page_gives() -> None:
    row = {"id": "r", "status": "sent", "reference": None, "error": None}
    script = Script(
        httpx.Response(200, json={"items": [row, row], "next": "2000"}),
        httpx.Response(200, json={"items": [], "next": "4000"}),  # a short page is not the end
        httpx.Response(200, json={"items": [row], "next": None}),
    )
    rows = list(client(script).batch_rows("b/1", status="failed"))
    assert len(rows) == 3 and rows[0] == nc.BatchRow("r", "sent", None, None)
    assert [str(r.url) for r in script.requests] == [
        "http://notifier.test/v1/batches/b%2F1/notifications?status=failed",
        "http://notifier.test/v1/batches/b%2F1/notifications?status=failed&cursor=2000",
        "http://notifier.test/v1/batches/b%2F1/notifications?status=failed&cursor=4000",
    ]


def test_the_async_client_retries_with_one_key_too() -> None:
    script = Script(httpx.RemoteProtocolError("server disconnected"), problem(503, "0"))
    script.answers.append(httpx.Response(202, json={**ACCEPTED, "total": 2}))

    async def send() -> nc.BatchAccepted:
        quick: nc.Settings = {"backoff_base": 0.001, "backoff_cap": 0.01}
        transport = httpx.MockTransport(script)
        async with nc.AsyncClient("http://notifier.test", "k", transport=transport, **quick) as c:
            return await c.send_batch([{"to": "a@example.com"}], template="welcome")

    accepted = asyncio.run(send())
    assert accepted.total == 2 and len(script.requests) == 3
    assert len(set(script.keys)) == 1 and accepted.idempotency_key == script.keys[0]


def test_the_loop_itself_waits_first_zero_then_what_the_policy_says() -> None:
    call = verify_captcha("phone", "+8613800138000", "login", "1")
    steps = attempts(call, Retries(max_retries=1, max_retry_after=10))
    assert next(steps) == 0.0
    assert steps.send(httpx.ConnectError("refused")) >= 0.0
    with pytest.raises(StopIteration) as done:
        steps.send(httpx.Response(200, json={"valid": False, "reason": "mismatch"}))
    assert done.value.value == nc.Verdict(False, "mismatch")


def test_the_async_client_sends_sms_and_sms_batches_as_the_sync_one_does() -> None:
    script = Script(
        problem(503, "0"),
        httpx.Response(202, json=ACCEPTED),
        httpx.Response(202, json={**ACCEPTED, "total": 1}),
    )

    async def send() -> tuple[nc.Accepted, nc.BatchAccepted]:
        quick: nc.Settings = {"backoff_base": 0.001, "backoff_cap": 0.01}
        transport = httpx.MockTransport(script)
        async with nc.AsyncClient("http://notifier.test", "k", transport=transport, **quick) as c:
            one = await c.send_sms("+8613800138000", text="Your parcel ships today.")
            rows: list[nc.SmsRecipient] = [{"to": "+8613800138000", "data": {"order": "1"}}]
            return one, await c.send_sms_batch("shipped", rows, reference="b-1")

    one, batch = asyncio.run(send())
    assert (one.id, batch.total) == ("n1", 1)
    first, again, batched = script.requests
    assert first.headers["Idempotency-Key"] == again.headers["Idempotency-Key"]
    assert (str(again.url), str(batched.url)) == (
        "http://notifier.test/v1/sms", "http://notifier.test/v1/sms/batch",
    )  # fmt: skip
    assert json.loads(again.content) == {"to": "+8613800138000", "text": "Your parcel ships today."}
    assert json.loads(batched.content) == {
        "template": "shipped", "reference": "b-1",
        "recipients": [{"to": "+8613800138000", "data": {"order": "1"}}],
    }  # fmt: skip

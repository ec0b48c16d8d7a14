"""``/v1/suppressions`` through the Flask app and a real Redis."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from flask.testing import FlaskClient

from tests.support.harness.api import assert_problem, error_locs
from tests.support.harness.clients import auth


def test_add_show_list_and_remove(client: FlaskClient) -> None:
    added = client.post("/v1/suppressions", json={"address": "Ada@Example.COM"}, headers=auth())
    assert added.status_code == 200
    entry = added.get_json()
    assert (entry["address"], entry["reason"]) == ("ada@example.com", "manual")
    again = client.post(
        "/v1/suppressions", json={"address": "ada@example.com", "reason": "unsubscribed"},
        headers=auth(),
    )  # fmt: skip
    # Already there, for a reason that stops more: kept as it was.
    assert (again.status_code, again.get_json()["reason"]) == (200, "manual")
    shown = client.get("/v1/suppressions/ADA@example.com", headers=auth())
    assert shown.status_code == 200 and shown.get_json() == entry
    page = client.get("/v1/suppressions", headers=auth()).get_json()
    assert page == {"items": [entry], "next": None}
    # Another client's list is its own.
    assert client.get("/v1/suppressions", headers=auth("mailer")).get_json()["items"] == []
    assert_problem(client.get("/v1/suppressions/ada@example.com", headers=auth("mailer")), 404)
    removed = client.delete("/v1/suppressions/ada@example.com", headers=auth())
    assert removed.status_code == 200
    assert_problem(client.delete("/v1/suppressions/ada@example.com", headers=auth()), 404)


def test_an_unsubscribe_becomes_a_bounce_that_stops_everything(client: FlaskClient) -> None:
    for reason in ("unsubscribed", "bounced"):
        body = {"address": "bob@example.com", "reason": reason}
        client.post("/v1/suppressions", json=body, headers=auth())
    shown = client.get("/v1/suppressions/bob@example.com", headers=auth()).get_json()
    assert shown["reason"] == "bounced"


def test_bad_input_and_scope(client: FlaskClient) -> None:
    bad = assert_problem(
        client.post("/v1/suppressions", json={"address": "x"}, headers=auth()), 422
    )
    assert ["body", "address"] in error_locs(bad)
    reason = {"address": "a@example.com", "reason": "spam"}
    assert ["body", "reason"] in error_locs(
        assert_problem(client.post("/v1/suppressions", json=reason, headers=auth()), 422)
    )
    for cursor in ("x", str(2**64)):
        bad = assert_problem(client.get(f"/v1/suppressions?cursor={cursor}", headers=auth()), 422)
        assert ["query", "cursor"] in error_locs(bad)
    assert_problem(client.get("/v1/suppressions", headers=auth("smser")), 403)


@pytest.mark.parametrize(
    "address",
    [
        "/ada@example.com",
        "//ada@example.com",
        "a//b@example.com",
        "x/./y@example.com",
        "a%b@example.com",
        "a%2Fb@example.com",
        "what?@example.com",
        "#1@example.com",
        "ada@bücher.example",
    ],
)
def test_any_address_that_can_be_added_can_be_read_and_removed(
    client: FlaskClient, address: str
) -> None:
    added = client.post("/v1/suppressions", json={"address": address}, headers=auth())
    assert added.status_code == 200, added.get_json()
    entry = added.get_json()
    # As README documents: the address percent-encoded as one path segment.
    path = "/v1/suppressions/" + quote(address, safe="")
    shown = client.get(path, headers=auth())
    assert (shown.status_code, shown.get_json()) == (200, entry)
    removed = client.delete(path, headers=auth())
    assert (removed.status_code, removed.get_json()) == (200, entry)
    assert_problem(client.get(path, headers=auth()), 404)


def test_an_address_with_a_slash_may_be_sent_unencoded(client: FlaskClient) -> None:
    client.post("/v1/suppressions", json={"address": "/a//b@example.com"}, headers=auth())
    shown = client.get("/v1/suppressions//a//b@example.com", headers=auth())
    assert (shown.status_code, shown.get_json()["address"]) == (200, "/a//b@example.com")
    # What is no address is on no list, whatever it holds.
    assert_problem(client.get("/v1/suppressions/not an address", headers=auth()), 404)


def test_adding_goes_through_the_clients_rate(client: FlaskClient) -> None:
    # Each entry is kept until removed: a client adding them without end filled the Redis
    # every client shares, its rate never asked.
    answers = [
        client.post(
            "/v1/suppressions",
            json={"address": f"a{n}@x.example", "reason": "manual"},
            headers=auth("throttled"),
        )
        for n in range(4)
    ]
    assert [a.status_code for a in answers[:3]] == [200, 200, 200]
    assert assert_problem(answers[3], 429) and answers[3].headers["Retry-After"]
    assert client.get("/v1/suppressions", headers=auth("throttled")).status_code == 200

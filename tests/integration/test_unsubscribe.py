"""One-click unsubscribe (RFC 8058) and the suppression list, from a batch through a real worker
and the SMTP server to the link a mail client posts, and the next batch."""

from __future__ import annotations

import re
from email.message import EmailMessage
from urllib.parse import quote, urlsplit

import pytest
import requests

from tests.support.harness.batches import post_batch, rows, wait_batch
from tests.support.harness.clients import auth
from tests.support.harness.sms import PUBLIC_URL, Texting
from tests.support.harness.stack import Stack, send
from tests.support.harness.wait import wait_for

pytestmark = pytest.mark.integration


@pytest.fixture
def public(texting: Texting) -> Stack:
    """A stack that knows its public URL, so its bulk mail carries unsubscribe links: the
    session's ``texting`` (tests/support/harness/sms.py), whose SMS vendors and further clients
    the tests' client's mail leaves aside."""
    return texting.stack


def mails_to(stack: Stack, address: str, count: int = 1) -> list[EmailMessage]:
    return wait_for(
        lambda: len(found := stack.smtp.by_recipient().get(address, [])) >= count and found,
        what=f"{count} mail(s) to {address}",
    )


def local(link: str, stack: Stack) -> str:
    """The public link as the web behind the proxy sees it."""
    parts = urlsplit(link)
    assert f"{parts.scheme}://{parts.netloc}" == PUBLIC_URL
    return stack.base + parts.path


def test_a_click_suppresses_the_address_and_the_next_batch_skips_it(public: Stack) -> None:
    first = rows(2, "unsub")
    ada, bob = first[0]["to"], first[1]["to"]
    wait_batch(public.base, post_batch(public.base, first)["id"], "done")
    (mail,) = mails_to(public, bob)
    header = str(mail["List-Unsubscribe"])
    found = re.fullmatch(r"<(https://\S+/v1/unsubscribe/[A-Za-z0-9_-]{24})>", header)
    assert found, header
    assert mail["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    (ada_mail,) = mails_to(public, ada)
    assert ada_mail["List-Unsubscribe"] != header  # each recipient's own link
    link = local(found[1], public)
    # The page a person (or a link scanner) opens changes nothing: it only offers the button.
    page = requests.get(link, timeout=10)
    assert page.status_code == 200 and '<form method="post"' in page.text
    assert (
        requests.get(f"{public.base}/v1/suppressions/{bob}", headers=auth(), timeout=10).status_code
        == 404
    )
    # What a mail client posts (RFC 8058 3.2).
    clicked = requests.post(link, data={"List-Unsubscribe": "One-Click"}, timeout=10)
    assert clicked.status_code == 200 and "unsubscribed" in clicked.text
    entry = requests.get(f"{public.base}/v1/suppressions/{bob}", headers=auth(), timeout=10)
    assert entry.json()["reason"] == "unsubscribed"
    metrics = public.get("/metrics").text
    assert re.search(r'notifier_unsubscribes_total\{client="tester"\} [1-9]', metrics)
    # The next batch to both: Bob's row is suppressed, Ada's sent.
    again = [{**row, "reference": f"again-{i}"} for i, row in enumerate(first)]
    done = wait_batch(public.base, post_batch(public.base, again)["id"], "done")
    assert done["counts"] == {"sent": 1, "suppressed": 1}
    mails_to(public, ada, 2)
    assert len(public.smtp.by_recipient()[bob]) == 1
    # A receipt is not bulk mail: Bob still gets it.
    receipt = send(public, to=[bob], subject="Your receipt")
    assert public.wait_status(receipt, "sent")["status"] == "sent"


def test_a_forged_or_unknown_link_changes_nothing(public: Stack) -> None:
    for token in ("A" * 24, "not-a-token", "A" * 500):
        answer = requests.post(f"{public.base}/v1/unsubscribe/{token}", timeout=10)
        assert answer.status_code == 404
    listed = requests.get(f"{public.base}/v1/suppressions", headers=auth(), timeout=10).json()
    assert all(not e["address"].startswith("A") for e in listed["items"])


def test_a_single_mail_that_asks_for_it_carries_the_link(public: Stack) -> None:
    to = rows(1, "single")[0]["to"]
    notification_id = send(public, to=[to], subject="News", unsubscribe=True)
    public.wait_status(notification_id, "sent")
    (mail,) = mails_to(public, to)
    assert str(mail["List-Unsubscribe"]).startswith(f"<{PUBLIC_URL}/v1/unsubscribe/")
    many = public.post(
        "/v1/mail", {"to": [to, to + "x"], "subject": "S", "text": "T", "unsubscribe": True}
    )
    assert many.status_code == 422
    assert [e["loc"] for e in many.json()["errors"]] == [["body", "unsubscribe"]]


def test_an_address_the_path_cannot_hold_plainly_is_read_and_removed(public: Stack) -> None:
    """Through gunicorn: an address starting with "/" (or holding "//", "%", "?", "#"),
    percent-encoded as one path segment, is found and taken off the list."""
    odd = "/a//b%c?d#e@example.com"
    added = requests.post(
        f"{public.base}/v1/suppressions", json={"address": odd}, headers=auth(), timeout=10
    )
    assert added.status_code == 200, added.text
    url = f"{public.base}/v1/suppressions/{quote(odd, safe='')}"
    shown = requests.get(url, headers=auth(), timeout=10, allow_redirects=False)
    assert (shown.status_code, shown.json()["address"]) == (200, odd)
    removed = requests.delete(url, headers=auth(), timeout=10, allow_redirects=False)
    assert (removed.status_code, removed.json()["address"]) == (200, odd)
    assert requests.get(url, headers=auth(), timeout=10).status_code == 404

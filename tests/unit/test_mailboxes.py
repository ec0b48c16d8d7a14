"""The mailbox an address reaches, as the limits count it: only what a provider documents."""

from __future__ import annotations

import pytest

from notifier.mailboxes import mailbox


@pytest.mark.parametrize(
    ("address", "counted"),
    [
        # Every domain: case ignored, a +tag dropped (as before).
        ("Ada+promo@EXAMPLE.com", "ada@example.com"),
        ("+only@example.com", "+only@example.com"),  # a local part that is all tag stays whole
        # Gmail: dots ignored, googlemail.com the same mailbox.
        ("Ada.Lovelace@gmail.com", "adalovelace@gmail.com"),
        ("a.d.a.l.o.v.e.l.a.c.e+x.y@GMail.com", "adalovelace@gmail.com"),
        ("ada.lovelace@googlemail.com", "adalovelace@gmail.com"),
        # Fastmail's subdomain addressing, on its own domains.
        ("shop@ada.fastmail.com", "ada@fastmail.com"),
        ("shop@Ada.FastMail.fm", "ada@fastmail.fm"),
        ("ada+shop@fastmail.com", "ada@fastmail.com"),
    ],
)
def test_spellings_of_one_mailbox_count_as_one(address: str, counted: str) -> None:
    assert mailbox(address) == counted


@pytest.mark.parametrize(
    "address",
    [
        "ada.lovelace@outlook.com",  # no provider but Gmail documents dots as meaningless
        "ada.lovelace@yahoo.com",
        "ada.lovelace@icloud.com",
        "ada.lovelace@example.com",
        "ada.lovelace@mail.gmail.com",  # not Gmail's address domain
        "ada.lovelace@company.example",  # a Google Workspace domain: dots count there
        "shop@ada.example.com",  # another domain's subdomain is its own
        "shop@a.b.fastmail.com",
        "ada-shop@yahoo.com",  # a Yahoo disposable address: its base is not the account
    ],
)
def test_what_no_provider_documents_is_kept_apart(address: str) -> None:
    assert mailbox(address) == address


def test_providers_domains_are_not_merged_with_each_other() -> None:
    counted = {mailbox(f"ada@{domain}") for domain in ("outlook.com", "hotmail.com", "live.com")}
    assert len(counted) == 3
    counted = {mailbox(f"ada@{domain}") for domain in ("icloud.com", "me.com", "mac.com")}
    assert len(counted) == 3

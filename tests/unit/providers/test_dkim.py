"""DKIM signatures on the wire bytes, verified by dkimpy's own verifier, which finds the public
key through DNS: a DNS server of the test's own answers it (tests/support/peers/dns_server.py)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import dkim
import pytest

from config import ConfigError, load_settings
from notifier.providers.dkim import DkimSigner, load_keys
from notifier.providers.mime import build_wire
from notifier.providers.outbox import OutboxMailProvider, OutboxSettings
from tests.support.harness.dkim_keys import KeyPair, key_pair
from tests.support.harness.mail import mail
from tests.support.peers.dns_server import DnsServer


@pytest.fixture
def signer(pair: KeyPair) -> DkimSigner:
    return DkimSigner(
        load_keys({"example.com": {"selector": "s1", "private_key_file": str(pair.pem_file)}})
    )


def verified(data: bytes, dns_server: DnsServer) -> bool:
    with dns_server.as_resolver():
        found: bool = dkim.verify(data)
    return found


def signature_tags(data: bytes) -> dict[str, str]:
    header = data.split(b"\r\n\r\n", 1)[0].decode()
    found = re.search(r"^DKIM-Signature:(.*?)\r\n(?=\S)", header, re.S | re.M)
    assert found, header
    tags = (t.strip().split("=", 1) for t in re.sub(r"\s+", "", found[1]).split(";") if t.strip())
    return {name: value for name, value in tags}


def test_a_signed_mail_verifies_through_dns(signer: DkimSigner, dns_server: DnsServer) -> None:
    message = mail(
        sender="Acme <noreply@example.com>", subject="Grüße — your receipt", html="<p>Hi</p>",
        headers=(("List-Unsubscribe", "<https://n.example/u/t>"),
                 ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    )  # fmt: skip
    data = build_wire(message, signer).data
    assert data.startswith(b"DKIM-Signature: ")
    assert verified(data, dns_server)
    assert "s1._domainkey.example.com" in dns_server.questions
    tags = signature_tags(data)
    assert (tags["d"], tags["s"], tags["a"], tags["c"]) == (
        "example.com", "s1", "rsa-sha256", "relaxed/relaxed",
    )  # fmt: skip
    signed = tags["h"].lower().split(":")
    assert signed.count("from") == 2  # signed twice: a From added later breaks it
    for name in ("to", "subject", "date", "message-id", "content-type", "list-unsubscribe",
                 "list-unsubscribe-post"):  # fmt: skip
        assert name in signed
    assert all(len(line) <= 998 for line in data.split(b"\r\n"))


def test_a_changed_subject_or_body_no_longer_verifies(
    signer: DkimSigner, dns_server: DnsServer
) -> None:
    data = build_wire(mail(sender="noreply@example.com", subject="Hello"), signer).data
    assert not verified(data.replace(b"Subject: Hello", b"Subject: Hellp"), dns_server)
    head, body = data.split(b"\r\n\r\n", 1)
    assert not verified(head + b"\r\n\r\n" + body.replace(b"Plain", b"Pla1n"), dns_server)


@pytest.mark.parametrize(
    "added",
    [
        b"Reply-To: attacker@evil.example",  # the mail had none
        b"Subject: Act now",  # a second one
        b"From: ceo@example.com",
        b"List-Unsubscribe: <https://evil.example/u>",
        b"Cc: more@evil.example",
    ],
)
def test_a_header_added_on_the_way_no_longer_verifies(
    signer: DkimSigner, dns_server: DnsServer, added: bytes
) -> None:
    # Each signed header is named once more than the mail has it (RFC 6376 8.15): signed once,
    # a second Subject or a Reply-To added by anyone holding the mail kept the signature good.
    message = mail(
        sender="noreply@example.com", subject="Hello",
        headers=(("List-Unsubscribe", "<https://n.example/u/t>"),
                 ("List-Unsubscribe-Post", "List-Unsubscribe=One-Click")),
    )  # fmt: skip
    data = build_wire(message, signer).data
    assert verified(data, dns_server)
    # Added above the headers, where a verifier reading a name's copies from the bottom up
    # would find the signed one first (an added copy below it was always caught).
    assert not verified(added + b"\r\n" + data, dns_server)
    head, body = data.split(b"\r\n\r\n", 1)
    assert not verified(head + b"\r\n" + added + b"\r\n\r\n" + body, dns_server)


def test_a_to_that_a_relay_adds_to_a_mail_to_bcc_only_still_verifies(
    signer: DkimSigner, dns_server: DnsServer
) -> None:
    data = build_wire(
        mail(sender="noreply@example.com", to=(), bcc=("b@example.org",)), signer
    ).data
    head, body = data.split(b"\r\n\r\n", 1)
    assert b"\r\nTo:" not in head
    added = head + b"\r\nTo: undisclosed-recipients:;\r\n\r\n" + body  # as some relays do
    assert verified(added, dns_server)


def rewritten(data: bytes, name: bytes, value: bytes) -> bytes:
    """``data`` with header ``name``'s value replaced, as a provider that sets its own does."""
    found = re.subn(rb"(?mi)^" + name + rb":[^\r]*\r\n(?:[ \t][^\r]*\r\n)*",
                    name + b": " + value + b"\r\n", data, count=1)  # fmt: skip
    assert found[1] == 1, name
    return found[0]


def test_the_headers_a_provider_rewrites_can_be_left_unsigned(
    signer: DkimSigner, dns_server: DnsServer
) -> None:
    """SES sets its own Message-ID and Date on every mail: signed, they would break the
    signature on the way; left out, it verifies after SES rewrote them."""
    message = mail(sender="noreply@example.com", subject="Hello")
    unsigned = frozenset({b"message-id", b"date"})

    def as_ses_sends(data: bytes) -> bytes:
        data = rewritten(data, b"Message-ID", b"<0100018c@email.amazonses.com>")
        return rewritten(data, b"Date", b"Mon, 1 Jan 2024 00:00:00 +0000")

    signed = build_wire(message, signer, unsigned=unsigned).data
    assert "message-id" not in signature_tags(signed)["h"].lower().split(":")
    assert verified(as_ses_sends(signed), dns_server)
    assert not verified(as_ses_sends(build_wire(message, signer).data), dns_server)
    # What SES leaves alone is still signed.
    assert not verified(rewritten(signed, b"Subject", b"Hellp"), dns_server)


def test_the_parent_domains_key_signs_a_subdomain_and_others_go_unsigned(
    signer: DkimSigner,
) -> None:
    assert signer.domain_for("News <news@mail.Example.com>") == "example.com"
    assert signer.domain_for("noreply@example.org") is None
    plain = build_wire(mail(sender="noreply@example.org"), signer).data
    assert not plain.startswith(b"DKIM-Signature")


def test_the_outbox_writes_the_signed_bytes(
    signer: DkimSigner, dns_server: DnsServer, tmp_path: Path
) -> None:
    OutboxMailProvider(OutboxSettings(dir=tmp_path), dkim=signer).send_mail(
        message=mail("n7", sender="a@example.com")
    )
    assert verified((tmp_path / "n7.eml").read_bytes(), dns_server)


@pytest.mark.parametrize(
    ("entry", "says"),
    [
        (
            {
                "selector": "s1",
                "private_key": "-----BEGIN RSA PRIVATE KEY-----\nAAAA\n-----END RSA PRIVATE KEY-----\n",
            },
            "example.com: the private key cannot sign",
        ),
        (
            {"selector": "s1", "private_key_file": "no/such.pem"},
            "example.com: cannot read no/such.pem",
        ),
        ({"selector": "s1"}, "give private_key_file or private_key"),
        ({"selector": "bad selector", "private_key": "x"}, "selector"),
    ],
)
def test_a_key_that_cannot_sign_stops_the_start_with_one_line(
    monkeypatch: pytest.MonkeyPatch, entry: dict[str, str], says: str
) -> None:
    monkeypatch.setenv("NOTIFIER_DKIM_KEYS", json.dumps({"example.com": entry}))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("NOTIFIER_DKIM_KEYS: ") and says in message, message
    assert "\n" not in message and "AAAA" not in message  # the key is never echoed


def test_a_key_of_fewer_than_1024_bits_stops_the_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, dns_server: DnsServer
) -> None:
    """dkimpy signs with a 512-bit key, but verifiers refuse what it signs (RFC 8301 3.2):
    every mail would go out as if unsigned."""
    small = key_pair(tmp_path, bits=512)
    mail_bytes = b"From: a@example.com\r\nSubject: s\r\n\r\nx\r\n"
    signed = dkim.sign(mail_bytes, b"s9", b"example.com", small.pem_file.read_bytes())
    dns_server.records["s9._domainkey.example.com"] = small.record
    assert not verified(signed + mail_bytes, dns_server)  # what the check spares the operator
    entry = {"selector": "s9", "private_key_file": str(small.pem_file)}
    monkeypatch.setenv("NOTIFIER_DKIM_KEYS", json.dumps({"example.com": entry}))
    with pytest.raises(ConfigError, match=r"example\.com: the private key has 512 bits"):
        load_settings()


def test_a_key_in_the_setting_itself_signs(
    monkeypatch: pytest.MonkeyPatch, pair: KeyPair, dns_server: DnsServer
) -> None:
    monkeypatch.setenv(
        "NOTIFIER_DKIM_KEYS",
        json.dumps({"example.com": {"selector": "s1", "private_key": pair.pem}}),
    )
    from notifier.providers.registry import dkim_signer

    found = dkim_signer(load_settings())
    assert found is not None
    assert verified(build_wire(mail(sender="a@example.com"), found).data, dns_server)

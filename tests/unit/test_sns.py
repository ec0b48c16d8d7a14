"""notifier.sns: SNS messages verified as AWS documents, against AWS's own signed samples and
against messages signed here, whose certificate a local HTTPS server serves for the SNS hosts."""

from __future__ import annotations

import base64
import datetime
import json
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from notifier.api.problems import answer
from notifier.sns import (
    NOTIFICATION,
    SUBSCRIPTION_CONFIRMATION,
    UNSUBSCRIBE_CONFIRMATION,
    RawDelivery,
    SnsMessage,
    SnsRefused,
    SnsUnavailable,
    SnsVerifier,
    host_pattern,
    string_to_sign,
)
from tests.support.peers.sns import (
    AWS_CERT_PATH,
    AWS_CERTIFICATE,
    AWS_MESSAGES,
    CERT_PATH,
    CERT_URL,
    HOST,
    TOPIC,
    Pki,
    SnsPeer,
    confirmation,
    notification,
    sign,
)
from tests.support.peers.sns import loopback_adapter as _loopback_adapter
from tests.support.peers.sns import string_to_sign as documented_string_to_sign

Make = Callable[..., SnsVerifier]
OTHER_TOPIC = "arn:aws:sns:us-east-1:999999999999:attackers-own"


@pytest.fixture
def make(peer: SnsPeer) -> Iterator[Make]:
    """Build a verifier for TOPIC that reaches ``peer`` (keywords go to SnsVerifier; ``total``
    and ``max_bytes`` to its adapter); each is closed afterwards."""
    made: list[SnsVerifier] = []

    def build(*, total: float = 5.0, max_bytes: int | None = None, **kw: Any) -> SnsVerifier:
        caps = {} if max_bytes is None else {"max_bytes": max_bytes}
        kw.setdefault("topic_arns", [TOPIC])
        kw.setdefault("adapter", _loopback_adapter(peer.port, total=total, **caps))
        verifier = SnsVerifier(**kw)
        made.append(verifier)
        return verifier

    yield build
    for verifier in made:
        verifier.close()


def body(fields: dict[str, Any]) -> bytes:
    return json.dumps(fields).encode()


def signed(pki: Pki, fields: dict[str, str], version: str = "2") -> bytes:
    return body(sign(fields, pki.signing_key, version))


# -- the string to sign ---------------------------------------------------------------------


def test_the_string_to_sign_of_a_notification_has_each_name_and_value_on_a_line() -> None:
    fields = {**AWS_MESSAGES[2]}
    assert string_to_sign(fields) == (
        b"Message\nHello world\n"
        b"MessageId\n11405cc3-9ac7-56d5-b45d-079e8f7a8edf\n"
        b"Subject\nHello world\n"
        b"Timestamp\n2022-07-28T22:53:49.654Z\n"
        b"TopicArn\narn:aws:sns:us-east-2:295079676684:publish-and-verify-"
        b"6e11fed2-fcdf-4c52-9dc4-36ef43f37f84\n"
        b"Type\nNotification\n"
    )
    del fields["Subject"]
    assert b"Subject" not in string_to_sign(fields)


def test_the_string_to_sign_of_a_confirmation_has_its_url_and_token() -> None:
    fields = confirmation(subscribe_url="https://sns.us-east-1.amazonaws.com/?x")
    assert (
        string_to_sign(fields)
        == (
            f"Message\n{fields['Message']}\n"
            "MessageId\n165545c9-2a5c-472c-8df2-7ff2be2b3b1b\n"
            "SubscribeURL\nhttps://sns.us-east-1.amazonaws.com/?x\n"
            "Timestamp\n2026-05-02T00:54:06.655Z\n"
            "Token\n2336412f37fb687f5d51e6e2425f004a\n"
            f"TopicArn\n{TOPIC}\n"
            "Type\nSubscriptionConfirmation\n"
        ).encode()
    )
    unsubscribe = {**fields, "Type": UNSUBSCRIBE_CONFIRMATION}
    assert string_to_sign(unsubscribe) == documented_string_to_sign(unsubscribe)


# -- AWS's own messages ---------------------------------------------------------------------


@pytest.fixture
def aws_peer(peer: SnsPeer) -> SnsPeer:
    """The local server, also serving the certificate AWS signed its samples with."""
    peer.files[AWS_CERT_PATH] = AWS_CERTIFICATE
    return peer


def at(timestamp: str) -> Callable[[], datetime.datetime]:
    moment = datetime.datetime.fromisoformat(timestamp)
    return lambda: moment


@pytest.mark.parametrize("sample", AWS_MESSAGES, ids=["v1", "v2", "v1-subject", "v2-subject"])
def test_messages_aws_signed_verify_while_its_certificate_was_valid(
    make: Make, aws_peer: SnsPeer, sample: dict[str, str]
) -> None:
    verifier = make(topic_arns=[sample["TopicArn"]], clock=at(sample["Timestamp"]))
    message = verifier.verify(body(sample))
    assert message == SnsMessage(
        type=NOTIFICATION,
        message_id=sample["MessageId"],
        topic_arn=sample["TopicArn"],
        timestamp=sample["Timestamp"],
        message="Hello world",
        subject=sample.get("Subject"),
    )
    assert len(aws_peer.requests_for(AWS_CERT_PATH)) == 1


def test_a_message_aws_signed_is_refused_now_its_certificate_has_expired(
    make: Make, aws_peer: SnsPeer
) -> None:
    sample = AWS_MESSAGES[1]
    with pytest.raises(SnsRefused, match="valid from 2021-09-07 to 2022-08-17, not now"):
        make(topic_arns=[sample["TopicArn"]]).verify(body(sample))


@pytest.mark.parametrize(
    "change",
    [
        {"Message": "Hello world!"},
        {"Timestamp": "2022-07-28T22:53:49.655Z"},
        {"Subject": "Hello"},
        {"Type": "UnsubscribeConfirmation", "SubscribeURL": "x", "Token": "y"},
    ],
)
def test_a_message_aws_signed_is_refused_once_changed(
    make: Make, aws_peer: SnsPeer, change: dict[str, str]
) -> None:
    sample = {**AWS_MESSAGES[2], **change}
    verifier = make(topic_arns=[sample["TopicArn"]], clock=at(sample["Timestamp"]))
    with pytest.raises(SnsRefused, match="signature does not verify"):
        verifier.verify(body(sample))


def test_a_subject_aws_signed_cannot_be_dropped_nor_one_added(
    make: Make, aws_peer: SnsPeer
) -> None:
    with_subject = {**AWS_MESSAGES[3]}
    del with_subject["Subject"]
    without = {**AWS_MESSAGES[1], "Subject": "Hello world"}
    for sample in (with_subject, without):
        verifier = make(topic_arns=[sample["TopicArn"]], clock=at(sample["Timestamp"]))
        with pytest.raises(SnsRefused, match="signature"):
            verifier.verify(body(sample))


# -- messages signed here -------------------------------------------------------------------


@pytest.mark.parametrize("version", ["1", "2"])
@pytest.mark.parametrize("subject", [None, "Bounce\nnotice"])
def test_notifications_of_both_versions_verify(
    make: Make, pki: Pki, peer: SnsPeer, version: str, subject: str | None
) -> None:
    fields = notification('{"eventType": "Bounce", "x": "é\\n"}', subject=subject)
    message = make().verify(signed(pki, fields, version), {"X-Amz-Sns-Message-Type": NOTIFICATION})
    assert (message.type, message.topic_arn, message.subject) == (NOTIFICATION, TOPIC, subject)
    assert message.message == '{"eventType": "Bounce", "x": "é\\n"}'
    assert message.subscribe_url is None


@pytest.mark.parametrize("name", ["Message", "MessageId", "Subject", "Timestamp", "TopicArn"])
def test_a_changed_byte_in_any_signed_field_is_refused(
    make: Make, pki: Pki, peer: SnsPeer, name: str
) -> None:
    fields = sign(notification(subject="Hi", topic=TOPIC), pki.signing_key)
    value = fields[name]
    fields[name] = value[:-1] + chr(ord(value[-1]) ^ 1)
    verifier = make(topic_arns=[TOPIC, fields["TopicArn"]])
    with pytest.raises(SnsRefused, match="signature does not verify"):
        verifier.verify(body(fields))


def test_a_signature_with_one_bit_changed_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    fields = sign(notification(), pki.signing_key)
    raw = bytearray(base64.b64decode(fields["Signature"]))
    raw[17] ^= 0x01
    fields["Signature"] = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(body(fields))


def _signed_over(pki: Pki, fields: dict[str, str], text: str, version: str = "2") -> bytes:
    algorithm = hashes.SHA1() if version == "1" else hashes.SHA256()
    signature = pki.signing_key.sign(text.encode(), padding.PKCS1v15(), algorithm)
    return body(
        {**fields, "SignatureVersion": version, "Signature": base64.b64encode(signature).decode()}
    )


def test_a_string_signed_without_its_last_newline_is_refused(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    # useSend #449: name and value joined by newlines, with none after the last value.
    fields = notification()
    names = ["Message", "MessageId", "Timestamp", "TopicArn", "Type"]
    joined = "\n".join(f"{n}\n{fields[n]}" for n in names)
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(_signed_over(pki, fields, joined))
    make().verify(_signed_over(pki, fields, joined + "\n"))  # the same, as AWS signs it


def test_a_string_signed_in_another_order_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    fields = notification()
    names = ["MessageId", "Message", "Timestamp", "TopicArn", "Type"]
    text = "".join(f"{n}\n{fields[n]}\n" for n in names)
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(_signed_over(pki, fields, text))


def test_a_string_signed_with_an_unsigned_field_is_refused(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    fields = notification()
    names = ["Message", "MessageId", "Timestamp", "TopicArn", "Type", "UnsubscribeURL"]
    text = "".join(f"{n}\n{fields[n]}\n" for n in names)
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(_signed_over(pki, fields, text))


def test_a_version_other_than_the_one_signed_with_is_refused(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    fields = sign(notification(), pki.signing_key, "1")
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(body({**fields, "SignatureVersion": "2"}))
    with pytest.raises(SnsRefused, match="SignatureVersion is neither 1 nor 2"):
        make().verify(body({**fields, "SignatureVersion": "3"}))


def test_a_message_signed_by_another_key_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().verify(body(sign(notification(), other)))


# -- where the certificate may come from -------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        f"http://{HOST}{CERT_PATH}",
        f"https://{HOST}.evil.example{CERT_PATH}",
        f"https://evil.example/{HOST}{CERT_PATH}",
        f"https://{HOST}@evil.example{CERT_PATH}",
        f"https://user@{HOST}{CERT_PATH}",
        f"https://evil.example@{HOST}{CERT_PATH}",
        f"https://{HOST}\\@evil.example{CERT_PATH}",
        f"https://{HOST}:443{CERT_PATH}",
        f"https://{HOST}:8443{CERT_PATH}",
        f"https://{HOST}.{CERT_PATH}",
        f"https://SNS.US-EAST-1.AMAZONAWS.COM{CERT_PATH}",
        f"https://sns.a.b.amazonaws.com{CERT_PATH}",
        f"https://sns.amazonaws.com{CERT_PATH}",
        f"https://s3.amazonaws.com{CERT_PATH}",
        f"https://sns-us-east-1.amazonaws.com{CERT_PATH}",
        f"https://{HOST}/bucket{CERT_PATH}",
        f"https://{HOST}{CERT_PATH}?x=1",
        f"https://{HOST}{CERT_PATH}#x",
        f"https://{HOST}/cert.pem",
        f"https://{HOST}/SimpleNotificationService-x.pem.txt",
        f"https://{HOST}/x?.pem",
        f"https://{HOST}{CERT_PATH}\n",
        f" https://{HOST}{CERT_PATH}",
        f"https://{HOST}/SimpleNotificationService-%2F..%2Fx.pem",
    ],
)
def test_a_certificate_url_off_the_host_rule_is_refused_unfetched(
    make: Make, pki: Pki, peer: SnsPeer, url: str
) -> None:
    with pytest.raises(SnsRefused, match="SigningCertURL is not https://<an SNS host>"):
        make().verify(signed(pki, notification(cert_url=url)))
    assert peer.seen == []


@pytest.mark.parametrize(
    ("topic", "host"),
    [
        ("arn:aws:sns:us-east-2:123456789012:ses", "sns.us-east-2.amazonaws.com"),
        ("arn:aws-cn:sns:cn-north-1:123456789012:ses", "sns.cn-north-1.amazonaws.com.cn"),
    ],
)
def test_certificates_from_every_region_and_china_are_taken(
    make: Make, pki: Pki, peer: SnsPeer, topic: str, host: str
) -> None:
    fields = notification(cert_url=f"https://{host}{CERT_PATH}", topic=topic)
    make(topic_arns=[topic]).verify(signed(pki, fields))
    assert [s.host.split(":")[0] for s in peer.seen] == [host]


@pytest.mark.parametrize(
    "host",
    [
        "sns.us-east-2.amazonaws.com",  # a region, not the topic's (us-east-1)
        "sns.s3.amazonaws.com",  # the S3 bucket "sns", whoever holds it
        "sns.s3-us-west-2.amazonaws.com",
        "sns.s3-external-1.amazonaws.com",
    ],
)
def test_a_certificate_only_from_the_topics_own_region_is_fetched(
    make: Make, pki: Pki, peer: SnsPeer, host: str
) -> None:
    # The host pattern's * is the region of the message's topic: any one label took the S3
    # bucket named "sns" (nathforge/validatesns#6), which serves what its owner puts there.
    with pytest.raises(SnsRefused, match="SigningCertURL is not https://<an SNS host>"):
        make().verify(signed(pki, notification(cert_url=f"https://{host}{CERT_PATH}")))
    assert peer.seen == []


def test_a_confirmation_only_from_the_topics_own_region_is_followed(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    elsewhere = f"https://sns.s3.amazonaws.com/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t"
    with pytest.raises(SnsRefused, match="SubscribeURL is not"):
        make().receive(signed(pki, confirmation(subscribe_url=elsewhere)))
    assert [s.target for s in peer.seen] == [CERT_PATH]  # the certificate, and nothing more


def test_other_host_patterns_replace_the_default(make: Make, pki: Pki, peer: SnsPeer) -> None:
    china_topic = "arn:aws-cn:sns:cn-north-1:123456789012:ses"
    verifier = make(cert_hosts=["sns.*.amazonaws.com.cn"], topic_arns=[TOPIC, china_topic])
    with pytest.raises(SnsRefused, match="SigningCertURL"):
        verifier.verify(signed(pki, notification()))
    china = f"https://sns.cn-north-1.amazonaws.com.cn{CERT_PATH}"
    verifier.verify(signed(pki, notification(cert_url=china, topic=china_topic)))


@pytest.mark.parametrize(
    "pattern", ["", "*", "sns..amazonaws.com", "sns.*-1.amazonaws.com", "SNS.*.amazonaws.com"]
)
def test_a_bad_host_pattern_is_a_value_error(pattern: str) -> None:
    with pytest.raises(ValueError, match="not a host pattern"):
        host_pattern([pattern])


def test_a_redirecting_certificate_url_is_not_followed(make: Make, pki: Pki, peer: SnsPeer) -> None:
    elsewhere = "/SimpleNotificationService-elsewhere.pem"
    peer.files[elsewhere] = pki.signing_pem
    peer.redirects[CERT_PATH] = f"https://sns.us-east-2.amazonaws.com{elsewhere}"
    with pytest.raises(SnsRefused, match="redirects \\(HTTP 302\\)"):
        make().verify(signed(pki, notification()))
    assert [s.target for s in peer.seen] == [CERT_PATH]


def test_a_certificate_from_a_server_not_trusted_is_not_taken(
    make: Make, pki: Pki, peer: SnsPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(Path(__file__)))  # no CA in it
    with pytest.raises(SnsUnavailable, match="SSLError"):
        make().verify(signed(pki, notification()))


def test_only_the_system_trust_store_is_read_not_requests_bundle(
    make: Make, pki: Pki, peer: SnsPeer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(Path(__file__)))
    for variable in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"):
        monkeypatch.setenv(variable, str(pki.ca_file))
        with pytest.raises(SnsUnavailable, match="SSLError"):
            make().verify(signed(pki, notification()))


def test_a_server_whose_certificate_names_another_host_is_not_taken(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    url = f"https://sns.eu-west-1.amazonaws.com{CERT_PATH}"  # not in the server's certificate
    topic = "arn:aws:sns:eu-west-1:123456789012:ses"
    with pytest.raises(SnsUnavailable, match="SSLError"):
        make(topic_arns=[topic]).verify(signed(pki, notification(cert_url=url, topic=topic)))


@pytest.mark.parametrize("chunked", [False, True])
def test_a_certificate_past_the_size_cap_is_refused(
    make: Make, pki: Pki, peer: SnsPeer, chunked: bool
) -> None:
    peer.files[CERT_PATH] = pki.signing_pem + b"\n" * 40_000
    if chunked:
        peer.chunked.add(CERT_PATH)
    with pytest.raises(SnsRefused, match="too large"):
        make(max_bytes=32_768).verify(signed(pki, notification()))


def test_a_certificate_without_a_length_under_the_cap_is_read(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    peer.chunked.add(CERT_PATH)
    make().verify(signed(pki, notification()))


def test_a_certificate_that_trickles_in_ends_at_the_deadline(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    peer.trickling.add(CERT_PATH)
    with pytest.raises(SnsUnavailable, match=r"no complete answer within 0\.5 s"):
        make(total=0.5).verify(signed(pki, notification()))


def test_a_certificate_aws_fails_to_serve_is_asked_for_again(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    verifier = make()
    peer.statuses[CERT_PATH] = 503
    with pytest.raises(SnsUnavailable, match="HTTP 503"):
        verifier.verify(signed(pki, notification()))
    del peer.statuses[CERT_PATH]
    verifier.verify(signed(pki, notification()))
    assert len(peer.requests_for(CERT_PATH)) == 2


@pytest.mark.parametrize(
    ("status", "error"), [(404, SnsRefused), (403, SnsRefused), (429, SnsUnavailable)]
)
def test_a_certificate_url_answered_otherwise_is_no_certificate(
    make: Make, pki: Pki, peer: SnsPeer, status: int, error: type[Exception]
) -> None:
    peer.statuses[CERT_PATH] = status
    with pytest.raises(error, match=f"HTTP {status}"):
        make().verify(signed(pki, notification()))


def test_a_file_that_is_no_certificate_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    peer.files[CERT_PATH] = b"<html>hello</html>"
    with pytest.raises(SnsRefused, match="does not hold a PEM certificate"):
        make().verify(signed(pki, notification()))


@pytest.mark.parametrize("kind", ["rsa1024", "ec"])
def test_a_certificate_whose_key_is_weak_or_not_rsa_is_refused(
    make: Make, pki: Pki, peer: SnsPeer, kind: str
) -> None:
    key: Any = (
        rsa.generate_private_key(public_exponent=65537, key_size=1024)
        if kind == "rsa1024"
        else ec.generate_private_key(ec.SECP256R1())
    )
    peer.files[CERT_PATH] = pki.signing_certificate(key)
    with pytest.raises(SnsRefused, match="not RSA of 2048\\+ bits"):
        make().verify(signed(pki, notification()))


def test_a_certificate_outside_its_dates_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    now = datetime.datetime.now(datetime.UTC)
    day = datetime.timedelta(days=1)
    for dates in (
        {"not_before": now - 2 * day, "not_after": now - day},
        {"not_before": now + day, "not_after": now + 2 * day},
    ):
        peer.files[CERT_PATH] = pki.signing_certificate(pki.signing_key, **dates)
        with pytest.raises(SnsRefused, match="not now"):
            make().verify(signed(pki, notification()))


def test_a_kept_certificate_is_checked_again_once_it_expires(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    now = datetime.datetime.now(datetime.UTC)
    clock = [now]
    verifier = make(clock=lambda: clock[0])
    verifier.verify(signed(pki, notification()))
    clock[0] = now + datetime.timedelta(days=31)  # past the certificate's 30 days
    with pytest.raises(SnsRefused, match="not now"):
        verifier.verify(signed(pki, notification()))
    assert len(peer.requests_for(CERT_PATH)) == 1


# -- the certificate, fetched once -------------------------------------------------------------


def test_the_certificate_is_fetched_once_for_many_messages(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    verifier = make()
    for version in ("1", "2", "1"):
        verifier.verify(signed(pki, notification(), version))
    assert len(peer.requests_for(CERT_PATH)) == 1


def test_messages_arriving_together_wait_for_one_fetch(make: Make, pki: Pki, peer: SnsPeer) -> None:
    verifier = make()
    start = threading.Barrier(16)
    failures: list[BaseException] = []

    def post() -> None:
        start.wait()
        try:
            verifier.verify(signed(pki, notification()))
        except BaseException as e:
            failures.append(e)

    threads = [threading.Thread(target=post) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert len(peer.requests_for(CERT_PATH)) == 1


def test_the_certificates_kept_are_bounded(make: Make, pki: Pki, peer: SnsPeer) -> None:
    other_path = "/SimpleNotificationService-other.pem"
    peer.files[other_path] = pki.signing_pem
    verifier = make(cache_size=1)
    for url in (CERT_URL, f"https://{HOST}{other_path}", CERT_URL):
        verifier.verify(signed(pki, notification(cert_url=url)))
    assert len(peer.requests_for(CERT_PATH)) == 2
    assert len(peer.requests_for(other_path)) == 1


# -- topics and subscriptions -----------------------------------------------------------------


def test_a_notification_from_another_topic_is_refused_before_any_fetch(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    with pytest.raises(SnsRefused, match="is not one of ours"):
        make().verify(signed(pki, notification(topic=OTHER_TOPIC)))
    assert peer.seen == []


def test_no_topic_allowed_refuses_every_message(make: Make, pki: Pki, peer: SnsPeer) -> None:
    with pytest.raises(SnsRefused, match="is not one of ours"):
        make(topic_arns=[]).verify(signed(pki, notification()))


def test_a_confirmation_for_our_topic_is_confirmed(make: Make, pki: Pki, peer: SnsPeer) -> None:
    fields = confirmation()
    message = make().receive(signed(pki, fields))
    assert message.type == SUBSCRIPTION_CONFIRMATION
    assert message.subscribe_url == fields["SubscribeURL"]
    [seen] = peer.confirmations()
    assert f"https://{HOST}{seen.target}" == fields["SubscribeURL"]


def test_a_confirmation_for_another_topic_is_never_confirmed(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    # PostHog #61644: an attacker's own topic, properly signed by SNS, subscribing our URL.
    with pytest.raises(SnsRefused, match="is not one of ours"):
        make().receive(signed(pki, confirmation(topic=OTHER_TOPIC)))
    assert peer.seen == []


def test_a_confirmation_badly_signed_is_never_confirmed(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    fields = sign(confirmation(), pki.signing_key)
    fields["Token"] = "another"
    with pytest.raises(SnsRefused, match="signature does not verify"):
        make().receive(body(fields))
    assert peer.confirmations() == []


@pytest.mark.parametrize(
    "url",
    [
        f"https://evil.example/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"http://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://{HOST}@evil.example/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://{HOST}:8443/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={OTHER_TOPIC}&Token=t",
        f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&TopicArn={OTHER_TOPIC}&Token=t",
        f"https://{HOST}/?Action=Unsubscribe&TopicArn={TOPIC}&Token=t",
        f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}",
        f"https://{HOST}/other?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t",
        f"https://{HOST}/?Action=ConfirmSubscription&TopicArn={TOPIC}&Token=t#x",
    ],
)
def test_a_subscribe_url_off_the_rules_is_never_fetched(
    make: Make, pki: Pki, peer: SnsPeer, url: str
) -> None:
    with pytest.raises(SnsRefused, match="SubscribeURL"):
        make().receive(signed(pki, confirmation(subscribe_url=url)))
    assert peer.confirmations() == []


@pytest.mark.parametrize(("status", "error"), [(500, SnsUnavailable), (403, SnsRefused)])
def test_a_confirmation_aws_does_not_take_is_an_error(
    make: Make, pki: Pki, peer: SnsPeer, status: int, error: type[Exception]
) -> None:
    peer.statuses["/"] = status
    with pytest.raises(error, match=f"confirmation.*HTTP {status}"):
        make().receive(signed(pki, confirmation()))


def test_an_unsubscribe_confirmation_verifies_and_confirms_nothing(
    make: Make, pki: Pki, peer: SnsPeer
) -> None:
    message = make().receive(signed(pki, confirmation(kind=UNSUBSCRIBE_CONFIRMATION), "1"))
    assert message.type == UNSUBSCRIBE_CONFIRMATION
    assert peer.confirmations() == []


def test_a_notification_is_not_a_confirmation(make: Make, pki: Pki, peer: SnsPeer) -> None:
    verifier = make()
    message = verifier.verify(signed(pki, notification()))
    with pytest.raises(SnsRefused, match="not a SubscriptionConfirmation"):
        verifier.confirm(message)


# -- what is not an SNS envelope ---------------------------------------------------------------


SES_EVENT = {"notificationType": "Bounce", "bounce": {}, "mail": {"messageId": "x"}}


def test_raw_message_delivery_is_refused_saying_so(make: Make, pki: Pki, peer: SnsPeer) -> None:
    # listmonk #498: the bare SES event, posted with SNS's raw-delivery header.
    headers = {"x-amz-sns-rawdelivery": "true", "x-amz-sns-message-type": NOTIFICATION}
    for given in (headers, {}):
        with pytest.raises(RawDelivery, match="raw message delivery is on") as refused:
            make().verify(body(SES_EVENT), given)
        assert isinstance(refused.value, SnsRefused)
    with pytest.raises(RawDelivery):
        make().verify(signed(pki, notification()), {"X-Amz-Sns-Rawdelivery": "true"})
    with pytest.raises(SnsRefused, match="raw message delivery"):
        make().verify(b"a bare message, not JSON")
    assert peer.seen == []


@pytest.mark.parametrize(
    ("given", "reason"),
    [
        (b"[1, 2]", "not an SNS message"),
        (b"\xff\xfe", "not an SNS message"),
        (b'{"Type": "Notification", "Type": "Notification"}', "not an SNS message"),
        (body({"Type": "Other", "Signature": "x"}), "Type is not one"),
        (body({**notification(), "SignatureVersion": "2"}), "lacks Signature"),
        (body({"Type": NOTIFICATION, "Signature": "x"}), "lacks Message, MessageId"),
        (body({**notification(), "SignatureVersion": 2, "Signature": "x"}), "not a string"),
        (body({**notification(), "SignatureVersion": "2", "Signature": "%%"}), "not base64"),
        (
            body({**notification(), "Subject": None, "SignatureVersion": "2", "Signature": "x"}),
            "not a string",
        ),
    ],
)
def test_what_is_not_a_signed_envelope_is_refused(
    make: Make, peer: SnsPeer, given: bytes, reason: str
) -> None:
    with pytest.raises(SnsRefused, match=reason):
        make().verify(given)
    assert peer.seen == []


def test_a_topic_given_twice_is_refused(make: Make, pki: Pki, peer: SnsPeer) -> None:
    # Signed for our topic, with an attacker's after it: two parsers could read either.
    text = signed(pki, notification()).decode()
    twice = text[:-1] + f', "TopicArn": "{OTHER_TOPIC}"}}'
    with pytest.raises(SnsRefused, match="not an SNS message"):
        make().verify(twice.encode())


# -- how the API answers --------------------------------------------------------------------


def test_refusals_answer_403_and_unavailability_503() -> None:
    assert answer(SnsRefused("no")).status == 403
    assert answer(RawDelivery()).status == 403
    assert answer(SnsUnavailable("later")).status == 503

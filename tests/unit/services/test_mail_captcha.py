"""Codes by mail: the captcha lifecycle through the mail channel, with an in-memory mail
provider and a real Redis (no worker)."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from flask import Flask

from config import ConfigError, Settings, load_settings
from notifier import create_app
from notifier.errors import Limited, TransientProviderError
from notifier.providers.memory import MemoryMailProvider
from notifier.runtime import Runtime
from notifier.schemas import MailCaptchaRequest, MailVerifyRequest
from notifier.services.captcha import (
    MAIL,
    CaptchaPolicy,
    accept_captcha,
    deliver_mail_captcha,
    verify_captcha,
)
from notifier.stores.captchas import LABELLED_PURPOSES, Verdict
from tests.support.delivery import delivery
from tests.support.harness.captcha import NoQueue, gmail_spellings

ADDRESS = "Ada.Lovelace@Example.COM"


@pytest.fixture
def rt(make_settings: Callable[..., Settings]) -> Runtime:
    app: Flask = create_app(make_settings())
    found: Runtime = app.extensions["notifier"]
    return found


def accept(
    rt: Runtime,
    policy: CaptchaPolicy | None = None,
    test: bool = False,
    client: str = "tester",
    **ask: Any,
) -> str:
    body = MailCaptchaRequest.model_validate({"to": ADDRESS, "purpose": "login", **ask})
    return accept_captcha(
        body, channel=MAIL, client=client, policy=policy or rt.captcha_policy, store=rt.store,
        captchas=rt.captchas, queue=NoQueue(), test=test,
    ).id  # fmt: skip


def deliver(
    rt: Runtime, notification_id: str, mail: MemoryMailProvider | list[MemoryMailProvider]
) -> Any:
    d = delivery(rt, mail=mail, sender="Acme <noreply@example.com>")
    return deliver_mail_captcha(d, notification_id)


def verify(rt: Runtime, code: str, to: str = ADDRESS, purpose: str = "login") -> Verdict:
    body = MailVerifyRequest.model_validate({"to": to, "purpose": purpose, "code": code})
    return verify_captcha(
        body, channel=MAIL, client="tester", policy=rt.captcha_policy, captchas=rt.captchas
    )


def mailed_code(mail: MemoryMailProvider) -> str:
    found = re.search(r"\b(\d{6})\b", mail.sent[-1].text or "")
    assert found, mail.sent
    return found[1]


def test_the_code_is_mailed_in_the_locale_and_good_once(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    notification_id = accept(rt, locale="en")
    assert deliver(rt, notification_id, mail).status == "sent"
    (sent,) = mail.sent
    # The domain is kept in lower case; the local part as given.
    assert sent.to == ("Ada.Lovelace@example.com",)
    assert sent.subject == "Your Notifier verification code"
    code = mailed_code(mail)
    assert code in (sent.html or "") and "expires in 5 minutes" in (sent.text or "")
    assert ("Auto-Submitted", "auto-generated") in sent.headers
    record = rt.store.get(notification_id)
    assert record is not None and (record.kind, record.status) == ("mail", "sent")
    assert verify(rt, code).valid
    assert verify(rt, code).reason == "expired"


def test_a_code_by_mail_fails_over_as_mail_does(rt: Runtime) -> None:
    down = MemoryMailProvider(
        [TransientProviderError("sendgrid 503", provider="sendgrid")], name="sendgrid"
    )
    spare = MemoryMailProvider(name="smtp")
    notification_id = accept(rt, locale="en")
    assert deliver(rt, notification_id, [down, spare]).status == "sent"
    assert (down.sent, len(spare.sent)) == ([], 1)
    record = rt.store.get(notification_id)
    assert record is not None and (record.status, record.provider) == ("sent", "smtp")
    assert verify(rt, mailed_code(spare)).valid


def test_chinese_is_the_default_locale(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    deliver(rt, accept(rt), mail)
    assert mail.sent[0].subject == "您的Notifier验证码"
    assert "5 分钟内有效" in (mail.sent[0].text or "")


def test_a_domain_in_another_case_is_the_same_address(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    deliver(rt, accept(rt), mail)
    code = mailed_code(mail)
    # The code's address keeps its local part as given (RFC 5321 lets a server tell case there).
    assert verify(rt, code, to="ada.lovelace@example.com").reason == "expired"
    assert verify(rt, code, to="Ada.Lovelace@EXAMPLE.com").valid


def test_limits_are_the_sms_ones_kept_per_address(rt: Runtime) -> None:
    accept(rt)
    for same in ("Ada.Lovelace@example.com", "ada.lovelace+promo@EXAMPLE.com"):
        with pytest.raises(Limited, match="resend interval"):
            accept(rt, to=same)  # the same mailbox
    accept(rt, to="someone.else@example.com")  # another address has its own
    policy = CaptchaPolicy(resend_interval=0, daily_limit=2, address_daily_ceiling=3)
    grace = "grace@example.com"
    for _ in range(2):
        accept(rt, policy, to=grace)
    with pytest.raises(Limited, match="daily limit"):
        accept(rt, policy, to=grace)
    # Another client's allowance is its own, up to the address's ceiling for all.
    accept(rt, policy, to=grace, client="mailer")
    with pytest.raises(Limited, match="address daily ceiling"):
        accept(rt, policy, to=grace, client="mailer")


def test_the_spellings_of_one_gmail_mailbox_share_one_allowance(rt: Runtime) -> None:
    """45 spellings of one Gmail mailbox (dots anywhere, googlemail.com) against the default
    limits: 10 a client and 30 for all clients, not 45 codes."""
    policy = rt.captcha_policy
    assert (policy.daily_limit, policy.address_daily_ceiling) == (10, 30)
    spellings = gmail_spellings("adalovelace", 45)
    refusals: dict[str, list[str]] = {}

    def ask(n: int, client: str) -> str | None:
        try:  # each purpose has its own resend interval: only the daily counts stand in the way
            return accept(rt, client=client, to=spellings[n], purpose=f"p{n}")
        except Limited as e:
            refusals.setdefault(client, []).append(e.detail)
            return None

    first = [ask(n, "tester") for n in range(15)]
    assert sum(id is not None for id in first) == 10
    assert all("captcha daily limit reached" in why for why in refusals.pop("tester"))
    others = [ask(n, ("mailer", "shop", "bank")[n % 3]) for n in range(15, 45)]
    assert sum(id is not None for id in others) == 20
    assert all("address daily ceiling" in why for whys in refusals.values() for why in whys)
    # Counted as one mailbox, mailed as given: a code goes to the spelling it was asked for.
    mail = MemoryMailProvider()
    assert first[1] is not None and deliver(rt, first[1], mail).status == "sent"
    assert mail.sent[0].to == ("a.dalovelace@googlemail.com",)


def test_wrong_tries_are_counted_exactly_under_a_race(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    deliver(rt, accept(rt), mail)
    code = mailed_code(mail)
    wrong = "000000" if code != "000000" else "111111"
    barrier = threading.Barrier(8)
    verdicts: list[Verdict] = []

    def one() -> None:
        barrier.wait()
        verdicts.append(verify(rt, wrong))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Five wrong tries are counted, each once (4 ... 0 left); the rest find the code void.
    left = sorted((v.attempts_left or 0 for v in verdicts if v.reason == "mismatch"), reverse=True)
    assert left == [4, 3, 2, 1, 0]
    assert sum(v.reason == "too_many_attempts" for v in verdicts) == 3
    assert verify(rt, code).reason == "too_many_attempts"


def test_a_transient_failure_retries_with_a_new_code(rt: Runtime) -> None:
    mail = MemoryMailProvider([TransientProviderError("451 try later", provider="smtp")])
    notification_id = accept(rt)
    assert deliver(rt, notification_id, mail).status == "retry"
    assert deliver(rt, notification_id, mail).status == "sent"
    assert verify(rt, mailed_code(mail)).valid


def test_a_test_keys_code_is_simulated_and_shown(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    notification_id = accept(rt, test=True)
    assert deliver(rt, notification_id, mail).status == "sent"
    assert mail.sent == []
    record = rt.store.get(notification_id)
    assert record is not None and record.test_code is not None
    assert verify(rt, record.test_code).valid


def test_sends_and_verifies_are_counted_for_the_mail_channel(rt: Runtime) -> None:
    mail = MemoryMailProvider()
    deliver(rt, accept(rt, purpose="ratio"), mail)
    body = MailVerifyRequest.model_validate(
        {"to": ADDRESS, "purpose": "ratio", "code": mailed_code(mail)}
    )
    verify_captcha(
        body, channel=MAIL, client="tester", policy=rt.captcha_policy, captchas=rt.captchas,
        store=rt.store,
    )  # fmt: skip
    assert rt.store.counted("captchas_sent:mail:ratio") == 1
    assert rt.store.counted("captchas_verified:mail:ratio") == 1


def write(folder: Path, name: str, text: str) -> None:
    (folder / "mail_captcha").mkdir(parents=True, exist_ok=True)
    (folder / "mail_captcha" / name).write_text(text)


def test_an_operators_template_replaces_the_built_in_one(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    write(tmp_path, "en.subject.txt", "{{ code }} is your Acme code")
    write(tmp_path, "en.txt", "Code: {{ code }} ({{ minutes }} min, {{ purpose }})")
    app = create_app(make_settings(templates_dir=tmp_path))
    rt: Runtime = app.extensions["notifier"]
    mail = MemoryMailProvider()
    deliver(rt, accept(rt, locale="en"), mail)
    code = mailed_code(mail)
    assert mail.sent[0].subject == f"{code} is your Acme code"
    assert mail.sent[0].text == f"Code: {code} (5 min, login)"
    # What it does not replace is the built-in one: the HTML part, and the other locale.
    assert code in (mail.sent[0].html or "")
    deliver(rt, accept(rt, to="zh@example.com"), mail)
    assert mail.sent[-1].subject == "您的Notifier验证码"


@pytest.mark.parametrize(
    ("name", "text", "says"),
    [
        ("en.txt", "Your code is {{ cod }}", "missing variable"),
        ("en.txt", "No code here", "lacks the code"),
        ("en.subject.txt", "{% if %}", "TemplateSyntaxError"),
    ],
)
def test_an_operators_template_that_cannot_show_a_code_stops_the_start(
    make_settings: Callable[..., Settings], tmp_path: Path, name: str, text: str, says: str
) -> None:
    write(tmp_path, name, text)
    with pytest.raises(ConfigError, match=f"^NOTIFIER_TEMPLATES_DIR: .*{says}") as caught:
        create_app(make_settings(templates_dir=tmp_path))
    assert "\n" not in str(caught.value)


def test_a_templates_dir_that_is_not_a_folder_is_named(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NOTIFIER_TEMPLATES_DIR", str(tmp_path / "missing"))
    with pytest.raises(ConfigError, match=r"^NOTIFIER_TEMPLATES_DIR: .*directory"):
        load_settings()


def test_a_bounced_address_gets_no_code_and_an_unsubscribed_or_complaining_one_still_does(
    rt: Runtime,
) -> None:
    from notifier.services.bounces import Bounces

    bounces = Bounces("bounces.example.com", b"k" * 32)

    def send(notification_id: str, mail: MemoryMailProvider) -> str:
        return deliver_mail_captcha(
            delivery(rt, mail=mail, bounces=bounces), notification_id
        ).status

    mail = MemoryMailProvider()
    rt.suppressions.add("tester", "gone@example.com", "bounced")
    gone = accept(rt, to="gone@example.com")
    assert send(gone, mail) == "skipped" and mail.sent == []
    record = rt.store.get(gone)
    assert record is not None and record.status == "suppressed"
    rt.suppressions.add("tester", "left@example.com", "unsubscribed")  # from a newsletter
    left = accept(rt, to="left@example.com")
    assert send(left, mail) == "sent"
    assert mail.sent[0].envelope_from == bounces.envelope_sender(left, "left@example.com")
    # A person who marked a newsletter as spam still gets the code they asked for.
    rt.suppressions.add("tester", "cross@example.com", "complained")
    assert send(accept(rt, to="cross@example.com"), mail) == "sent"
    assert mail.sent[-1].to == ("cross@example.com",)


def test_a_client_that_makes_up_purposes_adds_no_series_past_twenty(rt: Runtime) -> None:
    # A purpose is whatever a client sends: counted as it is, each made-up one was a series on
    # every client's /metrics, for good.
    mail = MemoryMailProvider()
    for n in range(LABELLED_PURPOSES + 5):
        deliver(rt, accept(rt, purpose=f"junk{n}", to=f"x{n}@example.com"), mail)
    assert rt.store.counted("captchas_sent:mail:junk0") == 1
    assert rt.store.counted(f"captchas_sent:mail:junk{LABELLED_PURPOSES - 1}") == 1
    assert rt.store.counted(f"captchas_sent:mail:junk{LABELLED_PURPOSES}") == 0
    assert rt.store.counted("captchas_sent:mail:other") == 5
    assert rt.captchas.purpose_label("tester", "junk3") == "junk3"  # labelled: kept
    # Its made-up purposes took no label from another client's.
    assert rt.captchas.purpose_label("shop", "login") == "login"


def test_a_purpose_redis_cannot_label_is_counted_as_other(
    rt: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refused(**_: object) -> str:
        raise redis.ResponseError("OOM command not allowed when used memory > 'maxmemory'.")

    monkeypatch.setattr(rt.captchas, "_purpose_label", refused)
    assert rt.captchas.purpose_label("tester", "login") == "other"

"""Each vendor's settings are one model, read from its flat NOTIFIER_<VENDOR>_<FIELD> names and
handed to its adapter as they are."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import pytest

from notifier.providers.aliyun import AliyunSettings
from notifier.providers.outbox import OutboxSettings
from notifier.providers.registry import MAIL_PROVIDERS, SMS_PROVIDERS, UPLOAD_STORES
from notifier.providers.s3 import S3Settings
from notifier.providers.smtp import SmtpSettings
from notifier.providers.tencent import TencentSettings
from notifier.providers.twilio import TwilioSettings
from notifier.settings import (
    ConfigError,
    Settings,
    Vendor,
    VendorSettings,
    load_settings,
    variables,
)
from notifier.settings.vendor import vendor_settings


def test_a_vendors_variables_come_from_the_environment_then_dotenv(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "NOTIFIER_MAIL_PORT=2525\nNOTIFIER_TWILIO_FROM=+15005550001\nnotifier_s3_region=eu-west-1\n"
    )
    monkeypatch.setenv("NOTIFIER_TWILIO_FROM", "+15005550006")
    monkeypatch.setenv("NOTIFIER_TENCENT_REGION", "ap-beijing")
    settings = load_settings(outbox_dir="mail-out")
    assert settings.vendor(SmtpSettings).port == 2525  # .env
    assert settings.vendor(TwilioSettings).from_ == "+15005550006"  # the environment over .env
    assert settings.vendor(S3Settings).region == "eu-west-1"  # names in any case, as the rest
    assert settings.vendor(TencentSettings).region == "ap-beijing"
    assert settings.vendor(OutboxSettings).dir == Path("mail-out")  # a keyword over both
    assert settings.vendor(AliyunSettings).endpoint == "dysmsapi.aliyuncs.com"  # the default


def test_a_bad_vendor_value_is_one_line_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NOTIFIER_TWILIO_TIMEOUT", "0")
    monkeypatch.setenv("NOTIFIER_CAPTCHA_LENGTH", "6")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == ('NOTIFIER_TWILIO_TIMEOUT: Input should be greater than 0; got "0"')


@pytest.mark.parametrize(
    ("factories", "name"),
    [(MAIL_PROVIDERS, "smtp"), (MAIL_PROVIDERS, "outbox"), (MAIL_PROVIDERS, "ses"),
     (MAIL_PROVIDERS, "sendgrid"), (SMS_PROVIDERS, "twilio"),
     (SMS_PROVIDERS, "aliyun"), (SMS_PROVIDERS, "tencent"), (UPLOAD_STORES, "qiniu"),
     (UPLOAD_STORES, "s3"), (UPLOAD_STORES, "cos"), (UPLOAD_STORES, "gcs")],
)  # fmt: skip
def test_each_vendors_adapter_is_made_from_the_settings(
    factories: dict[str, Callable[[Settings], Any]], name: str
) -> None:
    settings = load_settings(
        twilio_account_sid="AC1", twilio_auth_token="t", twilio_from="+15005550006",
        aliyun_access_key_id="a", aliyun_access_key_secret="s", aliyun_sign_name="Acme",
        aliyun_template_code="SMS_1", tencent_secret_id="a", tencent_secret_key="s",
        tencent_sdk_app_id="1400000000", tencent_sign_name="Acme", tencent_template_id="1",
        qiniu_access_key="ak", qiniu_secret_key="sk", ses_region="eu-west-1", sendgrid_api_key="k",
    )  # fmt: skip
    assert isinstance(factories[name], Vendor)
    made = factories[name](settings)
    assert made.name == name
    getattr(made, "close", lambda: None)()


def test_a_vendor_hands_its_adapter_the_model_as_read() -> None:
    settings = load_settings(twilio_timeout=3)
    own, given = Vendor(TwilioSettings, lambda own, s: (own, s))(settings)
    assert own is settings.vendor(TwilioSettings) and own.timeout == 3
    assert given is settings


def test_every_vendor_variable_is_read_and_none_twice() -> None:
    keys = [key for model in vendor_settings() for key in model.flat_keys()]
    assert len(keys) == len(set(keys))
    assert {"NOTIFIER_TWILIO_FROM", "NOTIFIER_MAIL_SERVER", "NOTIFIER_OUTBOX_DIR"} <= variables()
    assert not set(keys) & set(Settings.model_fields)


def test_a_variable_declared_twice_is_refused() -> None:
    class Clash(VendorSettings):
        prefix: ClassVar[str] = "mail"
        provider: str = "smtp"

    from notifier.settings.vendor import _one_model_a_variable

    with pytest.raises(
        ConfigError, match=r"^NOTIFIER_MAIL_PROVIDER: declared by Settings and Clash"
    ):
        _one_model_a_variable((Clash,))


def test_a_model_that_is_no_vendors_is_not_handed_out() -> None:
    class Stray(VendorSettings):
        prefix: ClassVar[str] = "stray"

    with pytest.raises(LookupError, match="Stray"):
        load_settings().vendor(Stray)

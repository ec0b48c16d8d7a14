"""A NOTIFIER_* variable no setting reads: one line naming it and the nearest known name, which
stops production and is a warning elsewhere; the variables other tools set under the prefix are
known."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

from notifier.settings import ConfigError, load_settings
from notifier.settings.names import OTHER_NAMES, variables

PRODUCTION = {
    "NOTIFIER_ENV": "production",
    "NOTIFIER_REDIS_URL": "redis://r",
    "NOTIFIER_API_KEYS": "[]",
    "NOTIFIER_SMS_PROVIDERS": "console",
    "NOTIFIER_CAPTCHA_SECRET": "0123456789abcdef0123",
    "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
}
# What Kubernetes sets for a Service "notifier" and one "notifier-redis" of the namespace.
SERVICE_LINKS = {
    "NOTIFIER_SERVICE_HOST": "10.0.0.11",
    "NOTIFIER_SERVICE_PORT": "8000",
    "NOTIFIER_SERVICE_PORT_HTTP": "8000",
    "NOTIFIER_PORT": "tcp://10.0.0.11:8000",
    "NOTIFIER_PORT_8000_TCP": "tcp://10.0.0.11:8000",
    "NOTIFIER_PORT_8000_TCP_PROTO": "tcp",
    "NOTIFIER_PORT_8000_TCP_PORT": "8000",
    "NOTIFIER_PORT_8000_TCP_ADDR": "10.0.0.11",
    "NOTIFIER_REDIS_SERVICE_HOST": "fd00::12",
    "NOTIFIER_REDIS_PORT": "tcp://[fd00::12]:6379",
    "NOTIFIER_REDIS_PORT_6379_TCP_ADDR": "fd00::12",
}
Setenv = Callable[[Mapping[str, str]], None]


@pytest.mark.parametrize(
    ("name", "line"),
    [
        (
            "NOTIFIER_CAPTCHA_TTL_S",
            "NOTIFIER_CAPTCHA_TTL_S: unknown setting (did you mean NOTIFIER_CAPTCHA_TTL?)",
        ),
        # A setting a later release reads is unknown to this one: its value would not be used.
        (
            "NOTIFIER_SMS_FALLBACK_PROVIDERS",
            "NOTIFIER_SMS_FALLBACK_PROVIDERS: unknown setting (did you mean "
            "NOTIFIER_SMS_PROVIDERS?)",
        ),
        ("notifier_twilio_form",
         "NOTIFIER_TWILIO_FORM: unknown setting (did you mean NOTIFIER_TWILIO_FROM?)"),
        ("NOTIFIER_XYZZY", "NOTIFIER_XYZZY: unknown setting"),
        # Another tool's name for a setting: the setting, not the nearest spelling.
        ("NOTIFIER_SMTP_HOST",
         "NOTIFIER_SMTP_HOST: unknown setting (did you mean NOTIFIER_MAIL_SERVER?)"),
        ("NOTIFIER_TWILIO_PHONE_NUMBER",
         "NOTIFIER_TWILIO_PHONE_NUMBER: unknown setting (did you mean NOTIFIER_TWILIO_FROM?)"),
    ],
)  # fmt: skip
def test_an_unknown_variable_stops_production_with_one_line(
    setenv: Setenv, name: str, line: str
) -> None:
    setenv({**PRODUCTION, name: "300"})
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == line


def test_it_is_named_before_what_it_leaves_unset(
    monkeypatch: pytest.MonkeyPatch, setenv: Setenv
) -> None:
    setenv({**PRODUCTION, "NOTIFIER_REDIS_ULR": "redis://r"})
    monkeypatch.delenv("NOTIFIER_REDIS_URL")
    with pytest.raises(
        ConfigError, match=r"^NOTIFIER_REDIS_ULR: .*did you mean NOTIFIER_REDIS_URL"
    ):
        load_settings()


def test_unknown_variables_of_dotenv_too_all_on_one_line(
    monkeypatch: pytest.MonkeyPatch, setenv: Setenv, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text("NOTIFIER_ENV=production\nNOTIFIER_RETRY_MAXIMUM=3\n")
    setenv({**PRODUCTION, "NOTIFIER_CAPTCHA_TTL_S": "30"})
    monkeypatch.delenv("NOTIFIER_ENV")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "NOTIFIER_CAPTCHA_TTL_S: unknown setting (did you mean NOTIFIER_CAPTCHA_TTL?); "
        "NOTIFIER_RETRY_MAXIMUM: unknown setting (did you mean NOTIFIER_RETRY_MAX?)"
    )


@pytest.mark.parametrize("env", ["development", "testing"])
def test_elsewhere_it_is_a_warning_line(
    setenv: Setenv, capsys: pytest.CaptureFixture[str], env: str
) -> None:
    setenv({"NOTIFIER_ENV": env, "NOTIFIER_CAPTCHA_TTL_S": "30"})
    settings = load_settings()
    assert settings.captcha_ttl == 300  # the variable is not read
    assert capsys.readouterr().err == (
        "notifier: configuration warning: NOTIFIER_CAPTCHA_TTL_S: unknown setting"
        " (did you mean NOTIFIER_CAPTCHA_TTL?)\n"
    )


def test_kubernetes_service_variables_are_known(
    setenv: Setenv, capsys: pytest.CaptureFixture[str]
) -> None:
    setenv({**PRODUCTION, **SERVICE_LINKS})
    load_settings()
    setenv({"NOTIFIER_ENV": "development"})
    load_settings()
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize(
    ("name", "value"),
    [("NOTIFIER_MAIL_SERVER_PORT", "587"), ("NOTIFIER_SERVICE_HOST", "notifier.internal"),
     ("NOTIFIER_PORT_8000_TCP_PROTO", "http"), ("NOTIFIER_WEB_PORT", "8000")],
)  # fmt: skip
def test_a_name_of_their_form_with_a_value_of_another_is_unknown(
    setenv: Setenv, name: str, value: str
) -> None:
    setenv({**PRODUCTION, name: value})
    with pytest.raises(ConfigError, match=f"^{name}: unknown setting"):
        load_settings()


def test_each_other_tools_name_points_at_a_setting_that_is_read() -> None:
    assert {f"NOTIFIER_{target}" for target in OTHER_NAMES.values()} <= variables()

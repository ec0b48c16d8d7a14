"""An adapter of another package, registered under an entry-point group, declares its settings
the way a built-in vendor does: a model, read from its NOTIFIER_<VENDOR>_* variables, checked
at start-up, handed to its adapter."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from notifier import create_app
from notifier.runtime import Runtime
from notifier.settings import ConfigError, Settings, load_settings, variables
from tests.support.harness.acme import AcmeSettings, AcmeSmsProvider, install


@pytest.fixture
def acme(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """The Acme adapter, installed for one test."""
    monkeypatch.syspath_prepend(str(install(tmp_path / "site")))


def test_an_installed_adapters_settings_are_read_from_its_variables(
    acme: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFIER_ACME_API_KEY", "k-123")
    monkeypatch.setenv("NOTIFIER_ACME_REGIONS", '["eu", "cn"]')
    own = load_settings().vendor(AcmeSettings)
    assert own.api_key is not None and own.api_key.get_secret_value() == "k-123"
    assert (own.sender, own.regions) == ("Acme", ["eu", "cn"])
    assert {"NOTIFIER_ACME_API_KEY", "NOTIFIER_ACME_SENDER", "NOTIFIER_ACME_REGIONS"} <= variables()


def test_a_listed_adapter_is_made_from_its_settings(
    acme: None, make_settings: Callable[..., Settings]
) -> None:
    app = create_app(make_settings(sms_providers=["acme"], acme_api_key="k-123"))
    runtime: Runtime = app.extensions["notifier"]
    (provider,) = runtime.sms_providers_for("+447700900123")
    assert isinstance(provider, AcmeSmsProvider)
    assert provider.settings is runtime.settings.vendor(AcmeSettings)
    assert provider.threads == runtime.settings.worker_concurrency


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"NOTIFIER_SMS_PROVIDERS": "console,acme"},
            "NOTIFIER_ACME_API_KEY: required when acme is listed",
        ),
        (
            {"NOTIFIER_ACME_SENDER": "Acme Corporation"},
            "NOTIFIER_ACME_SENDER: String should have at most 11 characters",
        ),
        ({"NOTIFIER_ACME_REGIONS": "eu,cn"}, "NOTIFIER_ACME_REGIONS: not valid JSON"),
    ],
)
def test_a_bad_adapter_setting_is_one_line_naming_it(
    acme: None, setenv: Callable[[dict[str, str]], None], env: dict[str, str], line: str
) -> None:
    setenv(env)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(line), caught.value


def test_without_the_adapter_its_variables_are_not_read(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert not {name for name in variables() if name.startswith("NOTIFIER_ACME_")}
    monkeypatch.setenv("NOTIFIER_ACME_API_KEY", "k-123")
    load_settings()
    assert "NOTIFIER_ACME_API_KEY: unknown setting" in capsys.readouterr().err
    monkeypatch.syspath_prepend(str(install(tmp_path / "site")))
    load_settings()
    assert capsys.readouterr().err == ""


def test_an_adapter_that_cannot_be_loaded_is_one_line(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(install(tmp_path, "notifier_acme_gone:vendor")))
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value) == (
        "notifier.sms_providers: acme = notifier_acme_gone:vendor cannot be loaded"
        " (ModuleNotFoundError: No module named 'notifier_acme_gone')"
    )

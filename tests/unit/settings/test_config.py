"""Settings: defaults per environment and one clear line for every bad value (no NOTIFIER_* of
the machine, and no .env file, leak in: the package's conftest)."""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from config import ConfigError, Environment, Settings, load_settings
from notifier import create_app
from notifier.providers.tencent import TencentSettings

PROD = {"NOTIFIER_ENV": "production", "NOTIFIER_REDIS_URL": "redis://r"}
PROD_READY = {
    **PROD,
    "NOTIFIER_API_KEYS": "[]",
    "NOTIFIER_SMS_PROVIDERS": "console",
    "NOTIFIER_CAPTCHA_SECRET": "0123456789abcdef0123",
}
TWILIO = {
    "NOTIFIER_SMS_PROVIDERS": "twilio,console",
    "NOTIFIER_TWILIO_ACCOUNT_SID": "AC123",
    "NOTIFIER_TWILIO_AUTH_TOKEN": "token",
    "NOTIFIER_TWILIO_FROM": "+15005550006",
}


def setenv(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def refused(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> str:
    """The one line that stops start-up with ``env`` set."""
    setenv(monkeypatch, env)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    return str(caught.value)


def test_production_with_what_it_requires_starts(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {**PROD_READY, "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com"})
    settings = load_settings()
    assert settings.mail_providers == ["smtp"]
    assert settings.sms_providers == ["console"]


def test_sms_providers_is_a_comma_list(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {**TWILIO, "NOTIFIER_SMS_PROVIDERS": " twilio , console "})
    assert load_settings().sms_providers == ["twilio", "console"]


def test_mail_providers_is_a_failover_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_MAIL_PROVIDERS", " console , outbox ")
    settings = load_settings()
    assert settings.mail_providers == ["console", "outbox"]
    assert {"console", "outbox"} <= settings.providers_listed


def test_mail_provider_is_a_route_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_MAIL_PROVIDER", "console")
    assert load_settings().mail_providers == ["console"]


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"NOTIFIER_MAIL_PROVIDER": "smtp", "NOTIFIER_MAIL_PROVIDERS": "ses,smtp"},
            "NOTIFIER_MAIL_PROVIDER and NOTIFIER_MAIL_PROVIDERS are both set: set one, the list "
            "(failover order) or the one name",
        ),
        (
            {"NOTIFIER_MAIL_PROVIDER": "ses,smtp"},
            "NOTIFIER_MAIL_PROVIDER: one name; a failover order goes in NOTIFIER_MAIL_PROVIDERS; "
            'got "ses,smtp"',
        ),
        (
            {"NOTIFIER_MAIL_PROVIDERS": "smtp,console,smtp"},
            'NOTIFIER_MAIL_PROVIDERS: names smtp more than once; got "smtp,console,smtp"',
        ),
        ({"NOTIFIER_MAIL_PROVIDERS": " , "},
         'NOTIFIER_MAIL_PROVIDERS: must name at least one provider; got " , "'),
    ],
)  # fmt: skip
def test_a_mail_route_that_cannot_be_is_one_line(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    assert refused(monkeypatch, env) == line


def test_development_defaults() -> None:
    settings = load_settings()
    assert settings.env is Environment.DEVELOPMENT
    assert settings.mail_providers == ["outbox"]
    assert settings.redis_url is None
    assert (settings.retry_max, settings.retry_base, settings.retry_cap) == (8, 2.0, 600.0)
    assert settings.broker_visibility_timeout == 3600
    assert settings.max_body_size == 1024 * 1024
    assert settings.sms_providers == ["console"]
    assert (settings.captcha_length, settings.captcha_ttl, settings.captcha_resend_interval) == (
        6,
        300,
        60,
    )
    assert (settings.captcha_max_attempts, settings.captcha_daily_limit) == (5, 10)


def test_broker_defaults_to_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.celery_ext import celery_config

    monkeypatch.setenv("NOTIFIER_REDIS_URL", "redis://db.internal:6379/2")
    redis_url = "redis://db.internal:6379/2"
    assert celery_config(load_settings(), redis_url)["broker_url"] == redis_url
    monkeypatch.setenv("NOTIFIER_BROKER_URL", "amqp://guest@mq.internal//")
    assert celery_config(load_settings(), redis_url)["broker_url"] == "amqp://guest@mq.internal//"


def test_a_list_of_rabbitmq_nodes_is_kombus_failover_list(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.celery_ext import celery_config

    nodes = "amqp://u:p@mq1:5672/n;amqps://u:p@mq2:5671/n;amqp://u:p@mq3:5672/n"
    monkeypatch.setenv("NOTIFIER_BROKER_URL", nodes)
    monkeypatch.setenv("NOTIFIER_BROKER_QUEUE_TYPE", "quorum")
    settings = load_settings()
    assert settings.broker_is_rabbitmq
    config = celery_config(settings, "redis://r")
    assert config["broker_url"] == nodes  # kombu splits it at each ";"
    assert config["broker_transport_options"]["confirm_publish"] is True


def test_a_silent_rabbitmq_node_is_noticed_and_passed_over(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Heartbeats and socket timeouts of the heartbeat's length on RabbitMQ only; and kombu's
    connections, pooled ones too, start on a node of the list that has not just failed."""
    from kombu import Connection

    from notifier.celery_ext import celery_config
    from notifier.patches import kombu_failover

    monkeypatch.setenv("NOTIFIER_BROKER_URL", "amqp://mq1//;amqp://mq2//")
    monkeypatch.setenv("NOTIFIER_BROKER_HEARTBEAT", "6")
    config = celery_config(load_settings(), "redis://r")
    options = config["broker_transport_options"]
    assert (config["broker_heartbeat"], options["read_timeout"], options["write_timeout"]) == (
        6, 6, 6,
    )  # fmt: skip
    monkeypatch.delenv("NOTIFIER_BROKER_URL")
    config = celery_config(load_settings(), "redis://r")
    assert "broker_heartbeat" not in config
    assert "read_timeout" not in config["broker_transport_options"]

    monkeypatch.setattr(kombu_failover, "_failed", {})
    tried: list[str] = []
    monkeypatch.setattr(Connection, "_connection_factory", lambda self: tried.append(self.hostname))
    first = kombu_failover.FailoverConnection("amqp://mq1:5672//;amqp://mq2:5672//")
    first._connection_factory()
    first.maybe_switch_next()  # mq1 failed: kombu moves on
    first._connection_factory()
    pooled = first.Pool(2).acquire()
    pooled.switch("amqp://mq1:5672//")  # a copy made where the original started
    pooled._connection_factory()
    assert isinstance(pooled, kombu_failover.FailoverConnection)
    assert tried == ["mq1", "mq2", "mq2"]


def test_the_workers_delay_queues_are_declared_once_through_the_list_of_nodes() -> None:
    """Celery's own step declares them on each node in turn, waiting out a dead one."""
    from notifier.patches.celery_consumer import ClusterDelayedDelivery, Consumer

    steps = Consumer.Blueprint.default_steps
    assert "notifier.patches.celery_consumer:ClusterDelayedDelivery" in steps
    assert not [step for step in steps if step.endswith(":DelayedDelivery")]
    nodes = "amqp://mq1//;amqp://mq2//;amqp://mq3//"
    step = ClusterDelayedDelivery.__new__(ClusterDelayedDelivery)  # the one method, no consumer
    assert step._validate_broker_urls(nodes) == {nodes}


def test_quorum_lanes_on_rabbitmq(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.celery_ext import celery_config
    from notifier.lanes import LANES

    monkeypatch.setenv("NOTIFIER_BROKER_URL", "amqp://guest@mq.internal//")
    classic = celery_config(load_settings(), "redis://r")
    assert [q.queue_arguments for q in classic["task_queues"]] == [None] * len(LANES)
    # Publisher confirms on RabbitMQ whatever the queues' type: a 202 means the broker has it.
    assert classic["broker_transport_options"]["confirm_publish"] is True
    assert "task_default_exchange_type" not in classic  # Celery's direct exchange, as before
    monkeypatch.setenv("NOTIFIER_BROKER_QUEUE_TYPE", "quorum")
    quorum = celery_config(load_settings(), "redis://r")
    assert [q.name for q in quorum["task_queues"]] == list(LANES)
    assert all(q.queue_arguments == {"x-queue-type": "quorum"} for q in quorum["task_queues"])
    assert quorum["broker_transport_options"]["confirm_publish"] is True
    # Native delayed delivery forwards retries through a topic exchange only.
    assert quorum["task_default_exchange_type"] == "topic"
    assert quorum["task_create_missing_queue_type"] == "quorum"


def test_no_publisher_confirms_asked_of_redis(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.celery_ext import celery_config

    monkeypatch.setenv("NOTIFIER_REDIS_URL", "redis://r")
    config = celery_config(load_settings(), "redis://r")
    assert config["broker_transport_options"]["confirm_publish"] is False


def test_worker_processes_default_to_the_cores_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import os

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 2, 5}, raising=False)
    assert load_settings().worker_processes == 3  # the affinity, not os.cpu_count()
    monkeypatch.setenv("NOTIFIER_WORKER_PROCESSES", "5")
    assert load_settings().worker_processes == 5


def test_dotenv_file_is_read(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("NOTIFIER_MAIL_PROVIDER=console\n")
    assert load_settings().mail_providers == ["console"]


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"NOTIFIER_ENV": "production"}, "NOTIFIER_REDIS_URL"),
        ({"NOTIFIER_ENV": "production", "NOTIFIER_REDIS_URL": "redis://r"}, "NOTIFIER_API_KEYS"),
        ({**PROD, "NOTIFIER_API_KEYS": "[]"}, "NOTIFIER_SMS_PROVIDERS"),
        (
            {**PROD, "NOTIFIER_API_KEYS": "[]", "NOTIFIER_SMS_PROVIDERS": "console"},
            "NOTIFIER_CAPTCHA_SECRET",
        ),
        (PROD_READY, "NOTIFIER_MAIL_DEFAULT_SENDER"),
        ({"NOTIFIER_SMS_PROVIDERS": " , "}, "NOTIFIER_SMS_PROVIDERS"),
        ({"NOTIFIER_SMS_PROVIDERS": "twilio,console"}, "NOTIFIER_TWILIO_ACCOUNT_SID"),
        ({**TWILIO, "NOTIFIER_TWILIO_AUTH_TOKEN": ""}, "NOTIFIER_TWILIO_AUTH_TOKEN"),
        ({**TWILIO, "NOTIFIER_TWILIO_FROM": ""}, "NOTIFIER_TWILIO_FROM"),
        ({**TWILIO, "NOTIFIER_TWILIO_BASE_URL": "ftp://x"}, "NOTIFIER_TWILIO_BASE_URL"),
        ({"NOTIFIER_CAPTCHA_LENGTH": "3"}, "NOTIFIER_CAPTCHA_LENGTH"),
        ({"NOTIFIER_CAPTCHA_SECRET": "short"}, "NOTIFIER_CAPTCHA_SECRET"),
        ({"NOTIFIER_ALIYUN_RECEIPT_TOKEN": "short"}, "NOTIFIER_ALIYUN_RECEIPT_TOKEN"),
        ({"NOTIFIER_TENCENT_RECEIPT_TOKEN": "a/b+c" * 4}, "NOTIFIER_TENCENT_RECEIPT_TOKEN"),
        ({"NOTIFIER_ENV": "staging"}, "NOTIFIER_ENV"),
        ({"NOTIFIER_MAIL_PROVIDERS": "ses,smtp"}, "NOTIFIER_SES_REGION"),  # required when listed
        ({"NOTIFIER_SES_ACCESS_KEY_ID": "AKIA0000000000000000"}, "NOTIFIER_SES_ACCESS_KEY_ID"),
        ({"NOTIFIER_SES_CONFIGURATION_SET": "events, all"}, "NOTIFIER_SES_CONFIGURATION_SET"),
        ({"NOTIFIER_MAIL_PROVIDERS": "sendgrid"}, "NOTIFIER_SENDGRID_API_KEY"),
        (
            {"NOTIFIER_SENDGRID_BASE_URL": "https://api.sendgrid.com/v3"},
            "NOTIFIER_SENDGRID_BASE_URL",
        ),  # a host, no path
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_PROVIDERS": "sendgrid",
                "NOTIFIER_SENDGRID_API_KEY": "SG.x",
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_SENDGRID_BASE_URL": "http://127.0.0.1:8025",
            },
            "NOTIFIER_SENDGRID_BASE_URL",
        ),
        (
            {**PROD_READY, "NOTIFIER_MAIL_PROVIDERS": "ses", "NOTIFIER_SES_REGION": "eu-west-1"},
            "NOTIFIER_MAIL_DEFAULT_SENDER",
        ),
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_PROVIDERS": "ses",
                "NOTIFIER_SES_REGION": "eu-west-1",
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_SES_ENDPOINT_URL": "http://ses.internal",
            },
            "NOTIFIER_SES_ENDPOINT_URL",
        ),
        ({"NOTIFIER_MAIL_PORT": "smtp"}, "NOTIFIER_MAIL_PORT"),
        ({"NOTIFIER_WORKER_PROCESSES": "0"}, "NOTIFIER_WORKER_PROCESSES"),
        ({"NOTIFIER_API_KEYS": '[{"client": "x"'}, "NOTIFIER_API_KEYS"),
        ({"NOTIFIER_API_KEYS": '[{"client": "x", "key_sha256": "abc"}]'}, "NOTIFIER_API_KEYS"),
        (
            {
                "NOTIFIER_API_KEYS": json.dumps(
                    [{"client": "x", "key_sha256": "0" * 64, "s3_key_prefix": "u/../alpha/"}]
                )
            },
            "NOTIFIER_API_KEYS",
        ),  # a prefix that would confine nothing (an empty, . or .. segment, a leading /)
        (
            {
                "NOTIFIER_API_KEYS": json.dumps(
                    [{"client": "x", "key_sha256": "0" * 64, "key_prefixes": {"cos": "/u/"}}]
                )
            },
            "NOTIFIER_API_KEYS",
        ),  # the same for a store of key_prefixes
        (
            {
                "NOTIFIER_API_KEYS": json.dumps(
                    [
                        {"client": "shop", "key_sha256": "0" * 64},
                        {"client": "shop", "key_sha256": "1" * 64, "mode": "test"},
                    ]
                )
            },
            "NOTIFIER_API_KEYS",
        ),  # a test key named as a live client: it would read the live client's codes
        ({"NOTIFIER_REDIS_URL": "localhost:6379"}, "NOTIFIER_REDIS_URL"),
        # redis-py raised on the port at first use (a traceback), and read /abc as database 0.
        ({"NOTIFIER_REDIS_URL": "redis://h:notaport/0"}, "NOTIFIER_REDIS_URL"),
        ({"NOTIFIER_REDIS_URL": "redis://h:6379/abc"}, "NOTIFIER_REDIS_URL"),
        ({"NOTIFIER_SENTRY_DSN": "notadsn"}, "NOTIFIER_SENTRY_DSN"),  # sentry_sdk's BadDsn
        ({"NOTIFIER_CAPTCHA_SECRET": " " * 16}, "NOTIFIER_CAPTCHA_SECRET"),
        ({"NOTIFIER_REDIS_URL": "amqp://mq"}, "NOTIFIER_REDIS_URL"),
        ({"NOTIFIER_RETRY_CAP": "4000"}, "NOTIFIER_RETRY_CAP"),
        # A record kept less than a backlog's wait or its retries: lost unsent.
        ({"NOTIFIER_STATUS_TTL": "60"}, "NOTIFIER_STATUS_TTL"),
        (
            {
                "NOTIFIER_RETRY_MAX": "100",
                "NOTIFIER_RETRY_CAP": "10000",
                "NOTIFIER_BROKER_VISIBILITY_TIMEOUT": "20000",
            },
            "NOTIFIER_STATUS_TTL",
        ),
        ({"NOTIFIER_BROKER_URL": "amqp://mq1//;redis://r"}, "NOTIFIER_BROKER_URL"),
        ({"NOTIFIER_BROKER_URL": "amqp://mq1//;"}, "NOTIFIER_BROKER_URL"),
        ({"NOTIFIER_BROKER_QUEUE_TYPE": "quorum"}, "NOTIFIER_BROKER_QUEUE_TYPE"),
        (
            {"NOTIFIER_BROKER_QUEUE_TYPE": "quorum", "NOTIFIER_BROKER_URL": "redis://q"},
            "NOTIFIER_BROKER_QUEUE_TYPE",
        ),
        ({"NOTIFIER_BROKER_QUEUE_TYPE": "stream"}, "NOTIFIER_BROKER_QUEUE_TYPE"),
        ({"NOTIFIER_SMS_ALLOWED_COUNTRIES": "GB,UK"}, "NOTIFIER_SMS_ALLOWED_COUNTRIES"),
        ({"NOTIFIER_SMS_BLOCKED_PREFIXES": "+44 70,4475"}, "NOTIFIER_SMS_BLOCKED_PREFIXES"),
        (
            {"NOTIFIER_MAIL_USE_TLS": "true", "NOTIFIER_MAIL_USE_SSL": "true"},
            "NOTIFIER_MAIL_USE_TLS",
        ),
        ({"NOTIFIER_S3_ACCESS_KEY_ID": "AKIA1"}, "NOTIFIER_S3_ACCESS_KEY_ID"),
        ({"NOTIFIER_S3_ENDPOINT_URL": "minio.internal:9000"}, "NOTIFIER_S3_ENDPOINT_URL"),
        ({"NOTIFIER_S3_ADDRESSING_STYLE": "host"}, "NOTIFIER_S3_ADDRESSING_STYLE"),
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_S3_ENDPOINT_URL": "http://minio.internal:9000",
            },
            "NOTIFIER_S3_ENDPOINT_URL",
        ),
        ({"NOTIFIER_OSS_ACCESS_KEY_ID": "LTAI1"}, "NOTIFIER_OSS_ACCESS_KEY_ID"),
        ({"NOTIFIER_OSS_ENDPOINT": "oss.internal:9000"}, "NOTIFIER_OSS_ENDPOINT"),
        ({"NOTIFIER_OSS_REGION": "oss-cn-hangzhou.aliyuncs.com"}, "NOTIFIER_OSS_REGION"),
        ({"NOTIFIER_OSS_REGION": "oss-cn-hangzhou"}, "NOTIFIER_OSS_REGION"),
        ({"NOTIFIER_COS_REGION": "ap guangzhou"}, "NOTIFIER_COS_REGION"),
        ({"NOTIFIER_COS_ENDPOINT": "cos.internal:9000"}, "NOTIFIER_COS_ENDPOINT"),
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_OSS_ENDPOINT": "http://oss.internal:9000",
            },
            "NOTIFIER_OSS_ENDPOINT",
        ),
        (
            {
                "NOTIFIER_API_KEYS": json.dumps(
                    [{"client": "x", "key_sha256": "0" * 64, "key_prefixes": {"oss": "u//a"}}]
                )
            },
            "NOTIFIER_API_KEYS",
        ),
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_COS_ENDPOINT": "http://cos.internal:9000",
            },
            "NOTIFIER_COS_ENDPOINT",
        ),
        (
            {
                **PROD_READY,
                "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
                "NOTIFIER_GCS_ENDPOINT": "http://gcs.internal:9000",
            },
            "NOTIFIER_GCS_ENDPOINT",
        ),
        ({"NOTIFIER_GCS_CREDENTIALS_FILE": "no/such/key.json"}, "NOTIFIER_GCS_CREDENTIALS_FILE"),
        ({"NOTIFIER_TEMPLATES_DIR": "no/such/folder"}, "NOTIFIER_TEMPLATES_DIR"),
        ({"NOTIFIER_SNS_CERT_HOSTS": "SNS.*.amazonaws.com"}, "NOTIFIER_SNS_CERT_HOSTS"),
        ({"NOTIFIER_SNS_CERT_HOSTS": "*"}, "NOTIFIER_SNS_CERT_HOSTS"),
        ({"NOTIFIER_SES_TOPIC_ARNS": "arn:aws:sns:us-east-1:1:events"}, "NOTIFIER_SES_TOPIC_ARNS"),
        (
            {"NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY": "MFkwEw=="},
            "NOTIFIER_SENDGRID_WEBHOOK_PUBLIC_KEY",
        ),
        ({"NOTIFIER_BOUNCE_RATE_WARN": "0.2"}, "NOTIFIER_BOUNCE_RATE_WARN"),
        ({"NOTIFIER_COMPLAINT_RATE_PAUSE": "2"}, "NOTIFIER_COMPLAINT_RATE_PAUSE"),
        ({"NOTIFIER_BOUNCE_GUARD_MIN_VOLUME": "0"}, "NOTIFIER_BOUNCE_GUARD_MIN_VOLUME"),
    ],
)
def test_bad_setting_is_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    message = refused(monkeypatch, env)
    assert message.startswith(variable + ":"), message
    assert "\n" not in message


@pytest.mark.parametrize(
    ("env", "says"),
    [
        # The working directory is no folder anyone meant.
        ({"NOTIFIER_STATE_DIR": ""}, "NOTIFIER_STATE_DIR: is empty: name a folder"),
        ({"NOTIFIER_TEMPLATES_DIR": " "}, "NOTIFIER_TEMPLATES_DIR: is empty: name a folder"),
        # Valid JSON: what is wrong is inside it, said without "must be JSON".
        (
            {"NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"86": "console"}'},
            "NOTIFIER_SMS_COUNTRY_PROVIDERS: Input should be a valid list (at 86)",
        ),
        ({"NOTIFIER_API_KEYS": "shop"}, "NOTIFIER_API_KEYS: must be JSON: "),
        ({"NOTIFIER_CAPTCHA_SECRET": "short"}, "NOTIFIER_CAPTCHA_SECRET: must be at least 16"),
        # A typo ("85" for "852") routed no number, unsaid.
        (
            {"NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"85": ["console"]}'},
            "NOTIFIER_SMS_COUNTRY_PROVIDERS: '85' is no country calling code",
        ),
        # Into List-Unsubscribe as it is: a non-ASCII URL went as encoded words no one reads.
        (
            {"NOTIFIER_PUBLIC_URL": "https://notify.bücher.example"},
            "NOTIFIER_PUBLIC_URL: must be ASCII",
        ),
        # Into From as it is: one mailbox, on a line a relay takes.
        (
            {"NOTIFIER_MAIL_DEFAULT_SENDER": "Acme <a@example.com> <c@evil.example>"},
            "NOTIFIER_MAIL_DEFAULT_SENDER: must be one mailbox",
        ),
        (
            {"NOTIFIER_MAIL_DEFAULT_SENDER": "x" * 1000 + " <a@example.com>"},
            "NOTIFIER_MAIL_DEFAULT_SENDER: its display name is too long",
        ),
    ],
)
def test_a_bad_setting_says_what_is_wrong_in_its_own_words(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], says: str
) -> None:
    assert refused(monkeypatch, env).startswith(says)


@pytest.mark.parametrize(
    ("given", "taken"),
    [
        ('"Sales > Support" <a@example.com>', '"Sales > Support" <a@example.com>'),
        ("Acme, Inc. <noreply@example.com>", "Acme, Inc. <noreply@example.com>"),
        ("Acme <a@example.com> ", "Acme <a@example.com>"),  # not "a@example.com>" in From
        ("noreply@example.com", "noreply@example.com"),
    ],
)
def test_a_default_sender_is_taken_as_one_mailbox(
    monkeypatch: pytest.MonkeyPatch, given: str, taken: str
) -> None:
    monkeypatch.setenv("NOTIFIER_MAIL_DEFAULT_SENDER", given)
    assert load_settings().mail_default_sender == taken
    monkeypatch.setenv("NOTIFIER_MAIL_DEFAULT_SENDER", "Acme a@example.com")  # no brackets
    with pytest.raises(ConfigError, match=r"^NOTIFIER_MAIL_DEFAULT_SENDER: must be one mailbox"):
        load_settings()


def test_secret_values_are_not_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NOTIFIER_MAIL_PASSWORD", "")
    monkeypatch.setenv("NOTIFIER_MAIL_TIMEOUT", "-1")
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith("NOTIFIER_MAIL_TIMEOUT:")


@pytest.mark.parametrize(
    ("variable", "value", "secret"),
    [
        # A misspelt field beside a callback secret: the entry was echoed, the secret in it.
        ("NOTIFIER_API_KEYS",
         '[{"client": "x", "key_sha256": "' + "0" * 64 + '", "callback_secrt": "whsec_S3CRET"}]',
         "S3CRET"),
        ("NOTIFIER_CONSOLE_USERS", '[{"name": "ada", "password": "hunter2hunter2"}]', "hunter2"),
        ("NOTIFIER_BROKER_URL", "amqp://u:pa/ss@h1//;redis://x", "pa/ss"),  # a / in it
    ],
)  # fmt: skip
def test_a_bad_setting_that_holds_a_secret_is_named_without_it(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, secret: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"{variable}:") and secret not in str(caught.value)


@pytest.mark.parametrize("token", ["a" * 15, "not/url+safe/but/long/enough", "é" * 20])
def test_a_bad_receipt_token_is_named_not_shown(
    monkeypatch: pytest.MonkeyPatch, token: str
) -> None:
    monkeypatch.setenv("NOTIFIER_ALIYUN_RECEIPT_TOKEN", token)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.startswith("NOTIFIER_ALIYUN_RECEIPT_TOKEN: must be at least 16 URL-safe")
    assert token not in message


def test_a_url_safe_receipt_token_is_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    token = secrets.token_urlsafe(32)
    monkeypatch.setenv("NOTIFIER_TENCENT_RECEIPT_TOKEN", token)
    found = load_settings().vendor(TencentSettings).receipt_token
    assert found is not None and found.get_secret_value() == token


def test_unknown_mail_provider_stops_start_up(make_settings: object) -> None:
    with pytest.raises(ConfigError, match=r"^NOTIFIER_MAIL_PROVIDER: unknown provider 'pigeon'"):
        create_app(make_settings(mail_provider="pigeon"))  # type: ignore[operator]
    with pytest.raises(ConfigError, match=r"^NOTIFIER_MAIL_PROVIDERS: unknown provider 'pigeon'"):
        create_app(make_settings(mail_providers="console,pigeon"))  # type: ignore[operator]


def test_create_app_from_environment_exits_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NOTIFIER_ENV", "production")
    with pytest.raises(SystemExit) as caught:
        create_app()
    assert caught.value.code == 2
    assert capsys.readouterr().err == (
        "notifier: configuration error: NOTIFIER_REDIS_URL: required in production\n"
    )


@pytest.mark.parametrize(
    ("env", "line"),
    [
        (
            {"NOTIFIER_SMS_PROVIDERS": "aliyun"},
            "NOTIFIER_ALIYUN_ACCESS_KEY_ID: required when aliyun is listed",
        ),
        (
            {
                "NOTIFIER_SMS_PROVIDERS": "console",
                "NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"86": ["tencent"]}',
                "NOTIFIER_TENCENT_SECRET_ID": "AKID",
                "NOTIFIER_TENCENT_SECRET_KEY": "secret",
                "NOTIFIER_TENCENT_SDK_APP_ID": "1400000000",
                "NOTIFIER_TENCENT_SIGN_NAME": "Acme",
            },
            "NOTIFIER_TENCENT_TEMPLATE_ID: required when tencent is listed",
        ),
        (
            {"NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"+86": ["console"]}'},
            "NOTIFIER_SMS_COUNTRY_PROVIDERS: ",
        ),
        (
            {"NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"86": []}'},
            "NOTIFIER_SMS_COUNTRY_PROVIDERS: each country needs a provider",
        ),
    ],
)
def test_mainland_providers_need_their_settings(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], line: str
) -> None:
    setenv(monkeypatch, env)
    with pytest.raises(ConfigError) as found:
        load_settings()
    assert str(found.value).startswith(line)


def test_a_country_order_is_read_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {"NOTIFIER_SMS_COUNTRY_PROVIDERS": '{"86": ["console", "memory"]}'})
    assert load_settings().sms_country_providers == {"86": ["console", "memory"]}


def hooked_client(url: str) -> str:
    secret = "whsec_" + "c2VjcmV0IG9mIHNpeHRlZW4gYnl0ZXMh"
    entry = {"client": "hooked", "key_sha256": "0" * 64, "callback_url": url}
    return json.dumps([{**entry, "callback_secret": secret}])


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://hooks.example.com/notifier", "must be https in production"),
        ("https://127.0.0.1:8443/hook", "private, loopback or link-local"),
        ("https://169.254.169.254/latest/meta-data/", "private, loopback or link-local"),
        ("https://[::1]/hook", "private, loopback or link-local"),
        ("https://localhost/hook", "private, loopback or link-local"),
        # Loopback in the numeric spellings getaddrinfo takes (inet_aton's), and "this host".
        ("https://127.1/cb", "private, loopback or link-local"),
        ("https://0x7f000001/cb", "private, loopback or link-local"),
        ("https://2130706433/cb", "private, loopback or link-local"),
        ("https://0177.0.0.1/cb", "private, loopback or link-local"),
        ("https://0/cb", "private, loopback or link-local"),
        ("https://0.0.0.0/cb", "private, loopback or link-local"),
        ("https://10.1/cb", "private, loopback or link-local"),
        ("https://[::ffff:127.0.0.1]/cb", "private, loopback or link-local"),
    ],
)
def test_production_refuses_callback_urls_that_may_not_be_called(
    monkeypatch: pytest.MonkeyPatch, url: str, why: str
) -> None:
    setenv(
        monkeypatch,
        {
            **PROD_READY,
            "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com",
            "NOTIFIER_API_KEYS": hooked_client(url),
        },
    )
    with pytest.raises(ConfigError) as found:
        load_settings()
    assert str(found.value).startswith("NOTIFIER_API_KEYS: callback_url of 'hooked'")
    assert why in str(found.value)


def test_a_callback_url_needs_its_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    entry = {"client": "hooked", "key_sha256": "0" * 64, "callback_url": "https://x.example/h"}
    setenv(monkeypatch, {"NOTIFIER_API_KEYS": json.dumps([entry])})
    with pytest.raises(ConfigError, match="callback_url and callback_secret go together"):
        load_settings()


def test_the_fraud_guard_reads_comma_lists(monkeypatch: pytest.MonkeyPatch) -> None:
    setenv(monkeypatch, {
        "NOTIFIER_SMS_ALLOWED_COUNTRIES": "gb, CN, PN",
        "NOTIFIER_SMS_BLOCKED_PREFIXES": "+44 70, +882",
    })  # fmt: skip
    settings = load_settings()
    # PN (Pitcairn) is an ISO 3166 code without a numbering plan of its own: taken (it stopped
    # start-up as "not ISO 3166 alpha-2"), matching no number.
    assert settings.sms_allowed_countries == {"GB", "CN", "PN"}
    assert settings.sms_blocked_prefixes == ("+4470", "+882")


def sms_client(sms_sender: dict[str, str]) -> str:
    """NOTIFIER_API_KEYS with one client whose SMS senders are ``sms_sender``."""
    entry = {"client": "shop", "key_sha256": "0" * 64, "sms_sender": sms_sender}
    return json.dumps([entry])


TWILIO = {
    "NOTIFIER_TWILIO_ACCOUNT_SID": "AC" + "0" * 32,
    "NOTIFIER_TWILIO_AUTH_TOKEN": "token",
    "NOTIFIER_TWILIO_FROM": "+15005550006",
}


@pytest.mark.parametrize("twilio", ["MG" + "a" * 32, "+15005550006", "Acme", "12345"])
def test_a_clients_sms_senders_are_read_by_provider(
    monkeypatch: pytest.MonkeyPatch, twilio: str
) -> None:
    """A Messaging Service, a number, an alphanumeric sender id, a short code."""
    senders = {"twilio": twilio, "console": "Acme"}
    setenv(monkeypatch, {
        **TWILIO, "NOTIFIER_SMS_PROVIDERS": "twilio,console",
        "NOTIFIER_API_KEYS": sms_client(senders),
    })  # fmt: skip
    (client,) = load_settings().api_keys or []
    assert client.sms_sender == senders


@pytest.mark.parametrize(
    ("providers", "senders", "problem"),
    [
        ("twilio", {"twilio": "+44 7911 123456"}, "a Twilio sender is an E.164 number"),
        ("twilio", {"twilio": "Acme Shop Ltd"}, "1 to 11 letters"),
        ("twilio", {"twilio": "MG" + "a" * 31}, "Messaging Service SID"),
        ("twilio", {"twillio": "+15005550006"}, "names ['twillio'], not among"),
        ("twilio", {"aliyun": "阿里商城"}, "names ['aliyun'], not among"),
    ],
)
def test_a_sender_for_a_provider_must_be_one_it_takes(
    monkeypatch: pytest.MonkeyPatch, providers: str, senders: dict[str, str], problem: str
) -> None:
    setenv(monkeypatch, {
        **TWILIO, "NOTIFIER_SMS_PROVIDERS": providers, "NOTIFIER_API_KEYS": sms_client(senders),
    })  # fmt: skip
    with pytest.raises(ConfigError) as found:
        load_settings()
    assert str(found.value).startswith("NOTIFIER_API_KEYS")
    assert problem in str(found.value)


def test_the_events_and_the_guard_read_their_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    from notifier.providers.ses import SesSettings
    from notifier.sns import DEFAULT_CERT_HOSTS

    defaults = load_settings()
    assert defaults.sns_cert_hosts == DEFAULT_CERT_HOSTS
    assert (defaults.bounce_guard_min_volume, defaults.bounce_rate_warn,
            defaults.bounce_rate_pause, defaults.complaint_rate_warn,
            defaults.complaint_rate_pause) == (500, 0.05, 0.10, 0.001, 0.005)  # fmt: skip
    topics = (
        "arn:aws:sns:eu-west-1:123456789012:ses-events, arn:aws-cn:sns:cn-north-1:123456789012:b"
    )
    setenv(monkeypatch, {"NOTIFIER_SES_TOPIC_ARNS": topics,
                         "NOTIFIER_SNS_CERT_HOSTS": "sns.*.amazonaws.com"})  # fmt: skip
    settings = load_settings()
    assert settings.vendor(SesSettings).topic_arns == (
        "arn:aws:sns:eu-west-1:123456789012:ses-events",
        "arn:aws-cn:sns:cn-north-1:123456789012:b",
    )
    assert settings.sns_cert_hosts == ("sns.*.amazonaws.com",)


@pytest.mark.parametrize(
    "entry",
    [
        {"qiniu_buckets": ["avatars"], "buckets": {"qiniu": ["avatars"]}},
        {"s3_buckets": [], "buckets": {"s3": ["avatars"]}},
        {"s3_key_prefix": "u/", "key_prefixes": {"s3": "u/"}},
    ],
)
def test_a_client_naming_a_store_both_ways_stops_start_up_naming_it(
    monkeypatch: pytest.MonkeyPatch, entry: dict[str, Any]
) -> None:
    client = {"client": "billing", "key_sha256": "0" * 64, **entry}
    message = refused(monkeypatch, {"NOTIFIER_API_KEYS": json.dumps([client])})
    assert message.startswith("NOTIFIER_API_KEYS:"), message
    store = next(iter(entry.get("buckets") or entry["key_prefixes"]))
    assert f"client 'billing' names the {store} store both in" in message


def test_the_older_fields_read_as_their_stores_entries(monkeypatch: pytest.MonkeyPatch) -> None:
    client = {
        "client": "billing",
        "key_sha256": "0" * 64,
        "qiniu_buckets": ["photos"],
        "s3_key_prefix": "tenant-7",
        "buckets": {"oss": ["avatars"], "s3": ["files"]},
        "key_prefixes": {"oss": "tenant-7/"},
    }
    monkeypatch.setenv("NOTIFIER_API_KEYS", json.dumps([client]))
    (read,) = load_settings().api_keys or []
    assert read.buckets == {"qiniu": {"photos"}, "oss": {"avatars"}, "s3": {"files"}}
    assert read.key_prefixes == {"s3": "tenant-7", "oss": "tenant-7/"}
    assert read.upload_buckets("cos") == frozenset() and read.upload_prefix("qiniu") is None


def test_development_makes_one_console_operator_and_keeps_it(tmp_path: Path) -> None:
    from werkzeug.security import check_password_hash

    from notifier.embedded import CONSOLE_USER, fill_in

    settings = Settings(_env_file=None, redis_url="redis://127.0.0.1:9/0", state_dir=tmp_path)  # type: ignore[call-arg]
    filled = fill_in(settings)
    assert filled.console_password is not None
    [user] = filled.console_users
    assert user.name == CONSOLE_USER
    assert check_password_hash(user.password_hash.get_secret_value(), filled.console_password)
    assert fill_in(settings).console_password == filled.console_password  # kept, not made again
    # Anywhere else an unset list is no operator: the console is off.
    testing = settings.model_copy(update={"env": Environment.TESTING, "api_keys": []})
    assert (fill_in(testing).console_users, fill_in(testing).console_password) == ([], None)


@pytest.mark.parametrize(
    ("users", "line"),
    [
        ('[{"name": "ada", "password_hash": "plain"}]', "not a hash of `notifier console add-user`"),
        # A werkzeug hash a guess costs nothing against: pbkdf2 of one round, scrypt of N 2**14.
        ('[{"name": "ada", "password_hash": "pbkdf2:sha256:1$s$00"}]', "600,000 rounds or more"),
        ('[{"name": "ada", "password_hash": "scrypt:16384:8:1$s$00"}]', "N at least 2**15"),
        ('[{"name": "ada", "password_hash": "scrypt:32768:8:1$s$00"}, {"name": "ada", '
         '"password_hash": "scrypt:32768:8:1$s$00"}]', "names ada more than once"),
    ],
)  # fmt: skip
def test_console_users_that_cannot_be_stop_start_up(
    monkeypatch: pytest.MonkeyPatch, users: str, line: str
) -> None:
    assert line in refused(monkeypatch, {"NOTIFIER_CONSOLE_USERS": users})


def test_a_state_folder_that_cannot_be_made_is_one_line_naming_it(
    make_settings: Callable[..., Settings], tmp_path: Path
) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    settings = make_settings(env="development", state_dir=blocked / "state", api_keys=None)
    with pytest.raises(ConfigError, match=r"^NOTIFIER_STATE_DIR: .* cannot be made or written"):
        create_app(settings)


def test_development_prints_its_one_key_at_the_webs_start_and_never_logs_it(
    make_settings: Callable[..., Settings],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The contract: "development: one key printed at start-up" (a Procfile web started alone;
    # `notifier run` prints it in its banner and hands its processes the key's client).
    settings = make_settings(env="development", state_dir=tmp_path / "state", api_keys=None)
    with caplog.at_level("INFO", logger="notifier"):
        create_app(settings)
        create_app(settings, serve=False)  # a worker or beat: where it is kept, not the key
    key = (tmp_path / "state" / "dev-api-key").read_text().strip()
    printed = capsys.readouterr().err
    assert printed.count(key) == 1 and f"development API key: {key}" in printed
    assert key not in caplog.text and "dev-api-key" in caplog.text


def test_an_unknown_provider_of_a_country_names_that_variable(
    make_settings: Callable[..., Settings],
) -> None:
    with pytest.raises(ConfigError, match=r"^NOTIFIER_SMS_COUNTRY_PROVIDERS: unknown provider"):
        create_app(make_settings(sms_country_providers={"86": ["pigeon"]}))


# The upload stores' endpoints over https, as production asks of them.
STORES_HTTPS = {store: f"https://{store.split('_')[0]}.example"
                for store in ("s3_endpoint_url", "oss_endpoint", "cos_endpoint")}  # fmt: skip


def test_production_with_development_providers_says_so_at_start(
    make_settings: Callable[..., Settings], caplog: pytest.LogCaptureFixture
) -> None:
    # The console SMS provider prints numbers and codes to stdout: allowed, never quiet.
    settings = make_settings(env="production", sms_providers=["console"], api_keys=[],
                             mail_provider="outbox", captcha_secret="0123456789abcdef0123",
                             **STORES_HTTPS)  # fmt: skip
    with caplog.at_level("WARNING", logger="notifier"):
        create_app(settings)
    (line,) = [r.getMessage() for r in caplog.records if "development providers" in r.getMessage()]
    assert "console" in line and "outbox" in line
    caplog.clear()
    with caplog.at_level("WARNING", logger="notifier"):
        create_app(make_settings())  # testing: nothing to say
    assert not [r for r in caplog.records if "development providers" in r.getMessage()]


@pytest.mark.parametrize(
    ("providers", "variable"),
    [
        ({"mail_provider": "memory"}, "NOTIFIER_MAIL_PROVIDER"),
        ({"mail_providers": ["smtp", "memory"]}, "NOTIFIER_MAIL_PROVIDERS"),
        ({"sms_providers": ["console", "memory"]}, "NOTIFIER_SMS_PROVIDERS"),
        ({"sms_country_providers": {"86": ["memory"]}}, "NOTIFIER_SMS_COUNTRY_PROVIDERS"),
    ],
)
def test_the_tests_memory_provider_stops_a_production_start(
    make_settings: Callable[..., Settings], providers: dict[str, Any], variable: str
) -> None:
    # It keeps messages in the worker's memory and records them sent: mail and codes lost.
    base = {"env": "production", "sms_providers": ["console"], "mail_provider": "outbox",
            "api_keys": [], "captcha_secret": "0123456789abcdef0123",
            "mail_server": "smtp.example.com", **STORES_HTTPS}  # fmt: skip
    if "mail_providers" in providers:
        del base["mail_provider"]
    with pytest.raises(ConfigError, match=rf"^{variable}: 'memory' is for tests"):
        create_app(make_settings(**{**base, **providers}))
    create_app(make_settings(**{**base, **providers, "env": "testing"}))  # the tests' own


ALIYUN = {
    "NOTIFIER_ALIYUN_ACCESS_KEY_ID": "LTAI1",
    "NOTIFIER_ALIYUN_ACCESS_KEY_SECRET": "s",
    "NOTIFIER_ALIYUN_SIGN_NAME": "Acme",
    "NOTIFIER_ALIYUN_TEMPLATE_CODE": "SMS_1",
}


@pytest.mark.parametrize(
    ("given", "variable"),
    [
        ({**TWILIO, "NOTIFIER_SMS_PROVIDERS": "twilio",
          "NOTIFIER_TWILIO_BASE_URL": "http://twilio.internal"}, "NOTIFIER_TWILIO_BASE_URL"),
        ({**ALIYUN, "NOTIFIER_SMS_PROVIDERS": "aliyun",
          "NOTIFIER_ALIYUN_ENDPOINT": "http://dysmsapi.internal"}, "NOTIFIER_ALIYUN_ENDPOINT"),
        ({"NOTIFIER_QINIU_ACCESS_KEY": "ak", "NOTIFIER_QINIU_SECRET_KEY": "sk",
          "NOTIFIER_QINIU_UPLOAD_URL": "http://upload.qiniup.com"}, "NOTIFIER_QINIU_UPLOAD_URL"),
    ],
)  # fmt: skip
def test_production_sends_no_key_number_or_code_over_http_but_to_this_machine(
    monkeypatch: pytest.MonkeyPatch, given: dict[str, str], variable: str
) -> None:
    setenv(monkeypatch, {**PROD_READY, "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com", **given})
    with pytest.raises(ConfigError, match=f"^{variable}: must be https:// in production"):
        load_settings()
    # http to this machine (a local relay or sidecar, a benchmark's stand-in) is taken.
    monkeypatch.setenv(variable, "http://127.0.0.1:8025")
    load_settings()
    monkeypatch.setenv("NOTIFIER_ENV", "testing")
    monkeypatch.setenv(variable, given[variable])
    load_settings()  # outside production, anything


def test_a_vendor_not_in_use_is_not_held_to_https(monkeypatch: pytest.MonkeyPatch) -> None:
    # A variable left behind for a provider no route names stopped production's start.
    setenv(monkeypatch, {**PROD_READY, "NOTIFIER_TWILIO_BASE_URL": "http://twilio.internal",
                         "NOTIFIER_ALIYUN_ENDPOINT": "http://dysmsapi.internal",
                         "NOTIFIER_QINIU_UPLOAD_URL": "http://upload.qiniup.com",
                         "NOTIFIER_MAIL_PROVIDERS": "outbox"})  # fmt: skip
    load_settings()


def test_production_logs_in_to_a_relay_off_this_machine_only_over_tls(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # smtplib sends the password as it is (base64) over a plain connection.
    login = {"NOTIFIER_MAIL_USERNAME": "notifier", "NOTIFIER_MAIL_PASSWORD": "pw",
             "NOTIFIER_MAIL_SERVER": "smtp.example.com",
             "NOTIFIER_MAIL_DEFAULT_SENDER": "a@example.com"}  # fmt: skip
    setenv(monkeypatch, {**PROD_READY, **login})
    with pytest.raises(ConfigError, match=r"^NOTIFIER_MAIL_USE_TLS: a login"):
        load_settings()
    monkeypatch.setenv("NOTIFIER_MAIL_USE_TLS", "true")
    load_settings()
    monkeypatch.setenv("NOTIFIER_MAIL_USE_TLS", "false")
    for here in ("127.0.0.1", "127.0.0.2", "LOCALHOST", "localhost.", "::1"):
        monkeypatch.setenv("NOTIFIER_MAIL_SERVER", here)  # a relay on this machine
        load_settings()

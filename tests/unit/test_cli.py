from __future__ import annotations

import hashlib
import json
import re

import pytest
import redis
from click.testing import CliRunner

from config import ApiClient
from notifier.cli import main, procfile_processes
from notifier.stores.captchas import Sender
from notifier.stores.notifications import record_key
from notifier.stores.notifications.log import log_secret
from tests.support.peers.redis_server import RedisServer


def test_keys_new_prints_the_key_once_and_an_entry_with_only_its_hash() -> None:
    result = CliRunner().invoke(
        main, ["keys", "new", "--client", "billing", "--scopes", "mail,sms", "--buckets", "avatars"]
    )
    assert result.exit_code == 0, result.output
    key = re.search(r"key \(shown once; give it to billing\): (ntf_\S+)", result.output)
    entry = re.search(r"entry for NOTIFIER_API_KEYS: (\{.*\})", result.output)
    assert key and entry
    client = ApiClient.model_validate(json.loads(entry[1]))
    assert client.client == "billing"
    assert client.scopes == {"mail", "sms"}
    assert client.upload_buckets("qiniu") == {"avatars"}
    assert client.key_sha256 == hashlib.sha256(key[1].encode()).hexdigest()
    assert key[1] not in entry[1]


def test_keys_new_rejects_an_unknown_scope() -> None:
    result = CliRunner().invoke(main, ["keys", "new", "--client", "x", "--scopes", "mail,admin"])
    assert result.exit_code == 2
    assert "unknown scope(s): admin" in result.output


@pytest.mark.parametrize("name", ["bad name", "", "x" * 65])
def test_keys_new_refuses_a_client_name_the_service_would_refuse(name: str) -> None:
    # Its entry would stop every process at start, every other client's web included.
    result = CliRunner().invoke(main, ["keys", "new", "--client", name])
    assert result.exit_code == 2 and "Invalid value for --client" in result.output
    assert "ntf_" not in result.output and "Traceback" not in result.output


def test_keys_new_test_mints_a_test_key() -> None:
    result = CliRunner().invoke(main, ["keys", "new", "--client", "shop-ci", "--test"])
    assert result.exit_code == 0, result.output
    entry = re.search(r"entry for NOTIFIER_API_KEYS: (\{.*\})", result.output)
    assert entry
    made = ApiClient.model_validate(json.loads(entry[1]))
    # What the README's walk-through of test keys does: mail, and login codes by SMS and mail.
    assert (made.mode, sorted(made.scopes)) == ("test", ["mail", "sms"])
    live = CliRunner().invoke(main, ["keys", "new", "--client", "shop"])
    found = re.search(r"entry for NOTIFIER_API_KEYS: (\{.*\})", live.output)
    assert found
    made = ApiClient.model_validate(json.loads(found[1]))
    assert (made.mode, sorted(made.scopes)) == ("live", ["mail"])
    chosen = ["keys", "new", "--client", "shop-ci", "--test", "--scopes", "sms"]
    found = re.search(
        r"entry for NOTIFIER_API_KEYS: (\{.*\})", CliRunner().invoke(main, chosen).output
    )
    assert found and sorted(ApiClient.model_validate(json.loads(found[1])).scopes) == ["sms"]


def test_run_starts_the_procfiles_worker_once_per_process_each_its_own_node() -> None:
    procfile = {"web": "gunicorn app", "worker": "celery -A celery_app worker", "beat": "beat"}
    assert procfile_processes(procfile, 3) == {
        "web": "gunicorn app",
        "worker.1": "celery -A celery_app worker -n worker1@%h",
        "worker.2": "celery -A celery_app worker -n worker2@%h",
        "worker.3": "celery -A celery_app worker -n worker3@%h",
        "beat": "beat",
    }


def test_migrate_moves_an_earlier_releases_keys_once(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = redis.Redis.from_url(redis_server.url(2), decode_responses=True)
    db.flushdb()
    db.hset("notifier:n:7f00", mapping={"id": "7f00", "status": "sent"})
    db.zadd("notifier:captcha:phone:+447700900123", {"m0": 1})
    monkeypatch.setenv("NOTIFIER_REDIS_URL", redis_server.url(2))
    monkeypatch.setenv("NOTIFIER_ENV", "testing")
    monkeypatch.setenv("NOTIFIER_CAPTCHA_SECRET", "s" * 32)
    result = CliRunner().invoke(main, ["migrate"])
    assert (result.exit_code, result.output) == (0, "keys moved: 2\n"), result.output
    assert db.hget(record_key("7f00"), "status") == "sent"
    # The phone's sends, under the name the service looks for (keyed as its processes are).
    names = log_secret(b"s" * 32)
    assert db.zcard(Sender("", "", "+447700900123").recipient_keys(names)[2]) == 1
    assert CliRunner().invoke(main, ["migrate"]).output == "keys moved: 0\n"


def test_migrate_without_a_redis_url_names_the_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NOTIFIER_REDIS_URL", raising=False)
    monkeypatch.setenv("NOTIFIER_ENV", "testing")
    result = CliRunner().invoke(main, ["migrate"])
    assert result.exit_code == 1
    assert "NOTIFIER_REDIS_URL" in result.output


def test_console_add_user_prints_the_list_with_a_slow_hash_never_the_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from werkzeug.security import check_password_hash

    from config import ConsoleUser

    kept = [{"name": "bob", "password_hash": "scrypt:32768:8:1$salt$00ff"}]
    monkeypatch.setenv("NOTIFIER_CONSOLE_USERS", json.dumps(kept))
    monkeypatch.setenv("NOTIFIER_ENV", "testing")
    password = "a long enough passphrase"
    result = CliRunner().invoke(
        main, ["console", "add-user", "ada"], input=f"{password}\n{password}\n"
    )
    assert result.exit_code == 0, result.output
    found = re.search(r"NOTIFIER_CONSOLE_USERS='(\[.*\])'", result.output)
    assert found and password not in result.output
    users = [ConsoleUser.model_validate(u) for u in json.loads(found[1])]
    assert [u.name for u in users] == ["bob", "ada"]
    made = users[1].password_hash.get_secret_value()
    assert made.startswith("scrypt:") and check_password_hash(made, password)
    short = CliRunner().invoke(main, ["console", "add-user", "ada"], input="short\nshort\n")
    assert short.exit_code == 2 and "at least 12 characters" in short.output
    # A name the setting would refuse is said before the password is asked for.
    bad = CliRunner().invoke(main, ["console", "add-user", "ada lovelace"], input="")
    assert bad.exit_code == 2 and "Invalid value for 'NAME'" in bad.output
    assert "Password" not in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize("command", [["migrate"], ["clients", "resume", "shop"]])
def test_a_redis_that_does_not_answer_is_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, command: list[str]
) -> None:
    monkeypatch.setenv("NOTIFIER_ENV", "testing")
    monkeypatch.setenv("NOTIFIER_REDIS_URL", "redis://127.0.0.1:1/0")
    result = CliRunner().invoke(main, command)
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: NOTIFIER_REDIS_URL: Redis did not answer")
    assert len(result.output.splitlines()) == 1

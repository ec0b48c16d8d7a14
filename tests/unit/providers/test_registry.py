"""What the providers cost a process that starts: the vendor libraries it does not use, unloaded."""

from __future__ import annotations

from pathlib import Path

from tests.support.harness.clients import QINIU, S3
from tests.support.harness.processes import python_output
from tests.support.peers.redis_server import RedisServer

# Loaded by the S3 store when it mints a form, by the SES provider when it is made, and by a
# DKIM signer when it signs: 50 ms (boto3 and botocore) and 20 ms (dkimpy, with dnspython) of
# every start of the web, a worker and beat, where a deployment uses none of them.
UNUSED = ("boto3", "botocore", "dkim")


def test_an_app_with_s3_configured_but_unused_and_no_dkim_loads_neither_boto3_nor_dkimpy(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    code = (
        "import sys\n"
        "from notifier import create_app\n"
        "create_app()\n"
        f"print(' '.join(m for m in {UNUSED!r} if m in sys.modules))"
    )
    settings = {
        "env": "testing",
        "redis_url": redis_server.url(1),
        "api_keys": "[]",
        "state_dir": tmp_path,
        **QINIU,
        **S3,
    }
    assert python_output(code, settings).split() == []

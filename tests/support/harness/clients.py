"""The API clients of the tests: their keys, scopes and the header that names one."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from config import ApiClient
from notifier.providers.registry import UPLOAD_STORES
from tests.support.peers import cos, gcs, oss, s3

KEYS = {
    "tester": "ntf_test-key-with-every-scope",
    "mailer": "ntf_test-key-mail-only",
    "smser": "ntf_test-key-sms-only",
    "uploader": "ntf_test-key-confined-uploads",
    "throttled": "ntf_test-key-three-a-minute",
    # Two more products behind the same Notifier: many clients reaching one phone or address,
    # and a bucket that is another client's.
    "shop": "ntf_test-key-of-the-shop",
    "bank": "ntf_test-key-of-the-bank",
}
SCOPES = {
    "tester": ["mail", "sms", "upload"],
    "mailer": ["mail"],
    "smser": ["sms"],
    "uploader": ["upload"],
    "throttled": ["mail"],
    "shop": ["mail", "sms", "upload"],
    "bank": ["mail", "sms"],
}
PREFIXES = {"uploader": "u/uploader/"}
# Every upload store: each client's buckets and prefix are the same in each, its buckets named
# as the store names them (bucket()).
STORES = tuple(UPLOAD_STORES)
# How a store names a bucket, where not as "avatars" (COS: "avatars-1250000000", its APPID).
BUCKET_NAMES = {"cos": "{}-1250000000"}
RATES = {"throttled": "3/m"}
# Every client's uploads go to "avatars" but the shop's, which go to "invoices".
BUCKETS = {"shop": ["invoices"]}
QINIU = {"qiniu_access_key": "test-access-key", "qiniu_secret_key": "test-secret-key"}
# The S3 settings of the tests: the local S3's credentials (tests/support/peers/s3.py); its
# endpoint (where forms go) is added where one runs.
S3 = {
    "s3_access_key_id": s3.ACCESS_KEY_ID,
    "s3_secret_access_key": s3.SECRET_ACCESS_KEY,
    "s3_region": s3.REGION,
    "s3_endpoint_url": "http://127.0.0.1:9",
}
# The same for Aliyun OSS (tests/support/peers/oss.py).
OSS = {
    "oss_access_key_id": oss.ACCESS_KEY_ID,
    "oss_access_key_secret": oss.ACCESS_KEY_SECRET,
    "oss_region": oss.REGION,
    "oss_endpoint": "http://127.0.0.1:9",
}
# The same for Tencent COS (tests/support/peers/cos.py).
COS = {
    "cos_secret_id": cos.SECRET_ID,
    "cos_secret_key": cos.SECRET_KEY,
    "cos_region": "ap-guangzhou",
    "cos_endpoint": "http://127.0.0.1:9",
}


def gcs_settings(folder: Path) -> dict[str, str]:
    """Cloud Storage's settings of the tests: the tests' service account (its key file written
    into ``folder``; tests/support/peers/gcs.py)."""
    return {"gcs_credentials_file": str(gcs.key_file(folder))}


def api_clients() -> list[ApiClient]:
    """The API clients of the tests, one per entry of KEYS."""
    return [
        ApiClient.model_validate(
            {
                "client": name,
                "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
                "scopes": SCOPES[name],
                "buckets": {
                    store: [bucket(store, b) for b in BUCKETS.get(name, ["avatars"])]
                    for store in STORES
                },
                "key_prefixes": {store: PREFIXES[name] for store in STORES if name in PREFIXES},
                "rate": RATES.get(name),
            }
        )
        for name, key in KEYS.items()
    ]


def bucket(store: str, name: str = "avatars") -> str:
    """The tests' bucket ``name`` as ``store`` names it."""
    return BUCKET_NAMES.get(store, "{}").format(name)


def auth(client: str = "tester") -> dict[str, str]:
    """The Authorization header of one test client."""
    return {"Authorization": f"Bearer {KEYS[client]}"}


def callback_client(name: str, key: str, url: str, secret: str, **more: Any) -> dict[str, Any]:
    """An entry of NOTIFIER_API_KEYS for a client whose status callbacks go to ``url``."""
    return {
        "client": name,
        "key_sha256": hashlib.sha256(key.encode()).hexdigest(),
        "scopes": ["mail", "sms"],
        "callback_url": url,
        "callback_secret": secret,
        **more,
    }


def api_keys_with(*entries: dict[str, Any]) -> str:
    """NOTIFIER_API_KEYS: the tests' clients and ``entries``."""
    return json.dumps([*(c.model_dump(mode="json") for c in api_clients()), *entries])

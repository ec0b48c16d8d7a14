"""What the tests of SMS notifications share: China's providers pointed at their fakes, and an
operator's folder of named SMS that those providers can send."""

from __future__ import annotations

import itertools
import threading
import uuid
from pathlib import Path
from typing import Any

from tests.support.peers import aliyun, tencent

# The built-in "shipped" again, with the approved templates of both fakes (their SHIPPED).
SHIPPED = f"""
text = "{{{{ shop }}}}: your parcel {{{{ order }}}} ships today."

[aliyun]
id = "{aliyun.SHIPPED}"
params = {{ shop = "{{{{ shop }}}}", order = "{{{{ order }}}}" }}

[tencent]
id = "{tencent.SHIPPED}"
params = ["{{{{ shop }}}}", "{{{{ order }}}}"]
"""
# A named SMS only Aliyun can send: no text, no table for Tencent.
ALIYUN_ONLY = f"""
[aliyun]
id = "{aliyun.SHIPPED}"
params = {{ shop = "{{{{ shop }}}}", order = "{{{{ order }}}}" }}
"""
DATA = {"shop": "Acme", "order": "1234"}


def templates_dir(root: Path) -> Path:
    """An operator's templates folder (NOTIFIER_TEMPLATES_DIR) with ``shipped`` and
    ``aliyun_only`` as named SMS."""
    (root / "sms").mkdir(parents=True, exist_ok=True)
    (root / "sms" / "shipped.toml").write_text(SHIPPED)
    (root / "sms" / "aliyun_only.toml").write_text(ALIYUN_ONLY)
    return root


def cn_providers(
    aliyun_endpoint: str = "http://127.0.0.1:9", tencent_endpoint: str = "http://127.0.0.1:9"
) -> dict[str, Any]:
    """Settings that send +86 through Aliyun, then Tencent (their fakes' accounts, at these
    endpoints), as keywords of Settings (a stack's environment takes the country providers as
    JSON: ``json.dumps``)."""
    return {
        "sms_country_providers": {"86": ["aliyun", "tencent"]},
        "aliyun_access_key_id": aliyun.ACCESS_KEY_ID,
        "aliyun_access_key_secret": aliyun.ACCESS_KEY_SECRET,
        "aliyun_sign_name": aliyun.SIGN_NAME,
        "aliyun_template_code": aliyun.TEMPLATE_CODE,
        "aliyun_endpoint": aliyun_endpoint,
        "tencent_secret_id": tencent.SECRET_ID,
        "tencent_secret_key": tencent.SECRET_KEY,
        "tencent_sdk_app_id": tencent.SDK_APP_ID,
        "tencent_sign_name": tencent.SIGN_NAME,
        "tencent_template_id": tencent.TEMPLATE_ID,
        "tencent_endpoint": tencent_endpoint,
    }


# The US numbers this process gave out: +1 650 and seven digits (an exchange of 200 to 999, a
# line), counted on from a random start, so none is given twice.
_given = itertools.count(uuid.uuid4().int % 4_000_000)
_lock = threading.Lock()


def american() -> str:
    """A valid US number no other test uses."""
    return americans(1)[0]


def americans(count: int) -> list[str]:
    """``count`` valid US numbers that no other test uses, in order."""
    with _lock:
        taken = [next(_given) for _ in range(count)]
    return [f"+1650{200 + k // 10_000}{k % 10_000:04d}" for k in taken]

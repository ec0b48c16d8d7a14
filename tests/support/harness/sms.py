"""What the tests of SMS notifications share: China's providers pointed at their fakes, an
operator's folder of named SMS that those providers can send, and the stack that texts through
all three vendors (``texting_stack``)."""

from __future__ import annotations

import base64
import contextlib
import itertools
import json
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import redis
import requests

from tests.support.harness.clients import api_keys_with, auth, callback_client
from tests.support.harness.stack import Caller, Stack, stack_settings, start_stack
from tests.support.peers import aliyun, tencent
from tests.support.peers.receiver import CallbackReceiver
from tests.support.peers.redis_server import RedisServer
from tests.support.peers.smtp import SmtpSink
from tests.support.peers.twilio import FakeTwilio

SHOP_KEY = "ntf_test-key-of-a-shop-that-texts"
TEST_KEY = "ntf_test-key-of-a-team-trying-sms"
SECRET = "whsec_" + base64.b64encode(b"the shop's callback secret").decode()
PUBLIC_URL = "https://notifier.example.com"  # where Twilio is told to post receipts
ALIYUN_TOKEN = "aliyun-receipts-0123456789abcdef"
TENCENT_TOKEN = "tencent_receipts_0123456789abcdef"
SHOP_SENDERS = {"twilio": "Acme", "aliyun": aliyun.CLIENT_SIGN_NAME}

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


@dataclass
class Texting:
    """The stack, its vendors' peers, and the shop's callbacks."""

    stack: Stack
    ali: aliyun.FakeAliyun
    ten: tencent.FakeTencent
    receiver: CallbackReceiver

    @property
    def twilio(self) -> FakeTwilio:
        return self.stack.twilio

    @property
    def shop(self) -> Caller:
        return Caller(self.stack, SHOP_KEY)

    @property
    def sandbox(self) -> Caller:
        return Caller(self.stack, TEST_KEY)

    def sms(self, body: dict[str, Any], **headers: str) -> requests.Response:
        """POST /v1/sms as the tester."""
        return requests.post(
            f"{self.stack.base}/v1/sms", json=body, headers={**auth(), **headers}, timeout=10
        )

    def send(self, **body: Any) -> str:
        """POST an SMS that is accepted; its notification's id."""
        answer = self.sms(body)
        assert answer.status_code == 202, answer.text
        found: str = answer.json()["id"]
        return found

    def peer_requests(self) -> tuple[int, int, int]:
        """How many requests each provider's peer has read."""
        return self.twilio.requests, self.ali.requests, self.ten.requests

    def records(self) -> set[str]:
        """The keys of every notification record in Redis."""
        state = redis.Redis.from_url(self.stack.env["NOTIFIER_REDIS_URL"], decode_responses=True)
        return set(state.scan_iter("notifier:{*}:n:*"))


@contextlib.contextmanager
def texting_stack(
    redis_server: RedisServer, smtp: SmtpSink, twilio: FakeTwilio, root: Path
) -> Iterator[Texting]:
    """A stack sending +86 through Aliyun then Tencent, the rest through Twilio then the console
    (its Redis database 9), with the operator's named SMS, a public URL, both vendors' receipt tokens, and a
    shop and a test key beside the tests' clients; started, and stopped with its peers."""
    with contextlib.ExitStack() as stop:
        ali, ten = aliyun.FakeAliyun().start(), tencent.FakeTencent().start()
        stop.callback(ten.stop)
        stop.callback(ali.stop)
        receiver = CallbackReceiver()
        stop.callback(receiver.stop)
        shop = callback_client(
            "shop-texts", SHOP_KEY, receiver.url, SECRET, sms_sender=SHOP_SENDERS
        )
        sandbox = {**callback_client("sandbox", TEST_KEY, receiver.url, SECRET), "mode": "test"}
        settings = stack_settings(redis_server, smtp, twilio, root / "state", 9)
        settings.update(cn_providers(ali.base_url, ten.base_url))
        settings.update(
            sms_country_providers=json.dumps(settings["sms_country_providers"]),
            templates_dir=templates_dir(root / "templates"),
            api_keys=api_keys_with(shop, sandbox),
            public_url=PUBLIC_URL,
            # The rest: Twilio, then the console provider (the quick start's), which prints.
            sms_providers="twilio,console",
            # The modules on this stack expect Twilio to send what it is not told to refuse
            # (test_cn_sms plans a 503 for its failover): a wait of a loaded test machine must
            # not pass the deadline and send through the console instead (the stacks' 5 s).
            twilio_timeout=20,
            aliyun_receipt_token=ALIYUN_TOKEN,
            tencent_receipt_token=TENCENT_TOKEN,
            sms_timeout=5,
        )
        stack = start_stack(settings, smtp, twilio)
        stop.callback(stack.stop)
        yield Texting(stack, ali, ten, receiver)

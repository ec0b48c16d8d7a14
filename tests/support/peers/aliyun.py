"""A local server that speaks Aliyun SMS (``dysmsapi`` 2017-05-25 ``SendSms``, RPC style).

It checks each request as Aliyun's gateway does, with its own reading of the documented V2
signature (not the adapter's code): parameters from the query and the form body, signature
recomputed from the secret (400 ``SignatureDoesNotMatch``), unknown key (404
``InvalidAccessKeyId.NotFound``), reused nonce, clock skew over 15 minutes. Then it checks the
sign name, template and its variables as the SMS product does (200 with an ``isv.*`` code), and
answers planned failures for a number before succeeding with a ``BizId``. ``receipt`` builds the
SmsReport push Aliyun would send for a message it accepted.

Checked by hand against the official SDK (alibabacloud-dysmsapi20170525 4.6.0 with
``signature_algorithm="v2"``, outside this project): its requests are accepted, a wrong secret
gets the same refusal, and it reads the answers. The SDK's default V3 signature is not checked.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from notifier.providers.aliyun import AliyunSettings, AliyunSmsProvider
from tests.support.peers.http_peer import Answer, JsonPeer, Reply, Request, adapter_options

ACCESS_KEY_ID = "LTAI5tTestKeyId00000000"
ACCESS_KEY_SECRET = "test-access-key-secret"
SIGN_NAME = "阿里云短信测试"
# Another sign name the account has approved: a client of Notifier's own (its sms_sender).
CLIENT_SIGN_NAME = "阿里商城"
SIGN_NAMES = (SIGN_NAME, CLIENT_SIGN_NAME)
TEMPLATE_CODE = "SMS_154950909"
# A notification's template ("${shop}: your parcel ${order} ships today").
SHIPPED = "SMS_470000001"
# The approved templates and their variables.
TEMPLATES = {
    TEMPLATE_CODE: ("code",),
    "SMS_465390001": ("code", "minutes"),
    SHIPPED: ("shop", "order"),
}
SKEW_SECONDS = 15 * 60


THROTTLED = Answer(400, "Throttling.User", "Request was denied due to user flow control.")
RECIPIENT_LIMIT = Answer(200, "isv.BUSINESS_LIMIT_CONTROL", "触发小时级流控Permits:5")
INVALID_NUMBER = Answer(200, "isv.MOBILE_NUMBER_ILLEGAL", "非法手机号")
SERVER_ERROR = Answer(
    503, "ServiceUnavailable", "The request has failed due to a temporary failure of the server."
)
SYSTEM_ERROR = Answer(200, "isp.SYSTEM_ERROR", "isp.SYSTEM_ERROR")
NO_BALANCE = Answer(200, "isv.AMOUNT_NOT_ENOUGH", "账户余额不足")
VALUES_REFUSED = Answer(200, "isv.PARAM_LENGTH_LIMIT", "参数超出长度限制")


@dataclass(frozen=True)
class Sent:
    """One message the fake accepted, as it came over the wire."""

    phone: str
    sign_name: str
    template: str
    params: dict[str, str]
    biz_id: str


def string_to_sign(method: str, params: dict[str, str]) -> str:
    """Aliyun's RPC StringToSign: ``METHOD&%2F&`` + the encoded, sorted query."""
    query = urlencode(sorted(params.items()), quote_via=quote, safe="~")
    return "&".join(quote(part, safe="~") for part in (method, "/", query))


def signature(method: str, params: dict[str, str], secret: str) -> str:
    """Aliyun's V2 signature of ``params`` (without ``Signature``)."""
    key = (secret + "&").encode()
    mac = hmac.new(key, string_to_sign(method, params).encode(), hashlib.sha1)
    return base64.b64encode(mac.digest()).decode()


def e164(wire: str) -> str:
    """A number as Aliyun accepts it (``138…``, ``86138…``, ``0086…``, ``+86…``) in E.164."""
    digits = wire.removeprefix("+").removeprefix("00")
    if len(digits) == 11 and digits.startswith("1"):
        digits = "86" + digits
    return "+" + digits


class FakeAliyun(JsonPeer[Answer]):
    """Aliyun SMS on 127.0.0.1; ``sent`` holds what it accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = {ACCESS_KEY_ID: ACCESS_KEY_SECRET}
        self.sent: list[Sent] = []
        self._nonces: set[str] = set()

    def start(self) -> FakeAliyun:
        super().start()
        return self

    def answer(self, request: Request) -> Reply:
        params = dict(parse_qsl(urlsplit(request.path).query, keep_blank_values=True))
        if request.method == "POST":
            params.update(parse_qsl(request.body.decode(), keep_blank_values=True))
        refused = self._gateway(request.method, params)
        if refused is not None:
            return refused
        return self._send_sms(params)

    def _gateway(self, method: str, params: dict[str, str]) -> Reply | None:
        """Aliyun's API gateway: action, version, key, nonce, clock and signature."""
        if params.get("Action") != "SendSms" or params.get("Version") != "2017-05-25":
            return _error(400, "InvalidParameter", "Action or Version is not valid.")
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            return _error(
                400, "InvalidParameter", "SignatureMethod or SignatureVersion is not supported."
            )
        secret = self.secrets.get(params.get("AccessKeyId", ""))
        if secret is None:
            return _error(404, "InvalidAccessKeyId.NotFound", "Specified access key is not found.")
        try:
            stamp = datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        except (KeyError, ValueError):
            return _error(
                400,
                "InvalidTimeStamp.Format",
                "Specified time stamp or date value is not well formatted.",
            )
        if abs((datetime.now(UTC) - stamp).total_seconds()) > SKEW_SECONDS:
            return _error(
                400, "InvalidTimeStamp.Expired", "Specified time stamp or date value is expired."
            )
        given = params.pop("Signature", "")
        expected = signature(method, params, secret)
        if not hmac.compare_digest(given.encode(), expected.encode()):
            return _error(
                400,
                "SignatureDoesNotMatch",
                "Specified signature is not matched with our calculation. server string to sign is:"
                + string_to_sign(method, params),
            )
        with self.lock:
            nonce = params.get("SignatureNonce", "")
            if not nonce or nonce in self._nonces:
                return _error(
                    400, "SignatureNonceUsed", "Specified signature nonce was used already."
                )
            self._nonces.add(nonce)
        return None

    def _send_sms(self, params: dict[str, str]) -> Reply:
        """The SMS product: required fields, sign name, template, its variables, plans."""
        for name in ("PhoneNumbers", "SignName", "TemplateCode"):
            if not params.get(name):
                return _error(400, f"Missing{name}", f"{name} is mandatory for this action.")
        if params["SignName"] not in SIGN_NAMES:
            return _error(200, "isv.SMS_SIGNATURE_ILLEGAL", "该账号下找不到对应签名")
        variables = TEMPLATES.get(params["TemplateCode"])
        if variables is None:
            return _error(200, "isv.SMS_TEMPLATE_ILLEGAL", "该账号下找不到对应模板")
        try:
            values: dict[str, Any] = json.loads(params.get("TemplateParam") or "{}")
        except ValueError:
            return _error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if not all(isinstance(v, str) for v in values.values()):
            return _error(200, "isv.INVALID_JSON_PARAM", "JSON参数不合法，只接受字符串值")
        if set(values) != set(variables):
            return _error(200, "isv.TEMPLATE_MISSING_PARAMETERS", "模板变量缺少对应参数值")
        planned = self.planned(e164(params["PhoneNumbers"]))
        if planned is not None:
            return _error(planned.status, planned.code, planned.message)
        biz_id = f"{uuid.uuid4().int % 10**15:015d}^0"
        with self.lock:
            self.sent.append(
                Sent(
                    params["PhoneNumbers"],
                    params["SignName"],
                    params["TemplateCode"],
                    values,
                    biz_id,
                )
            )
        return Reply(
            200,
            {
                "Code": "OK",
                "Message": "OK",
                "BizId": biz_id,
                "RequestId": str(uuid.uuid4()).upper(),
            },
        )

    def receipt(
        self, biz_id: str, *, success: bool = True, err_code: str = "DELIVERED", err_msg: str = ""
    ) -> list[dict[str, Any]]:
        """An SmsReport push (HTTP batch push format) of one message this fake accepted."""
        with self.lock:
            (sent,) = [s for s in self.sent if s.biz_id == biz_id]
        now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        return [
            {
                "phone_number": sent.phone[:-4] + "****", "send_time": now, "report_time": now,
                "success": success, "err_code": err_code, "err_msg": err_msg or err_code,
                "sms_size": "1", "biz_id": biz_id, "out_id": "",
            }
        ]  # fmt: skip


def _error(status: int, code: str, message: str) -> Reply:
    body = {"RequestId": str(uuid.uuid4()).upper(), "Code": code, "Message": message}
    if status != 200:
        body["HostId"] = "dysmsapi.aliyuncs.com"
        body["Recommend"] = f"https://api.aliyun.com/troubleshoot?q={code}"
    return Reply(status, body)


def provider(endpoint: str, **kw: Any) -> AliyunSmsProvider:
    """The adapter with the fake's credentials, sign name and template; ``kw`` overrides
    them and the adapter's options."""
    options = adapter_options(kw)
    values: dict[str, Any] = {
        "access_key_id": ACCESS_KEY_ID,
        "access_key_secret": ACCESS_KEY_SECRET,
        "sign_name": SIGN_NAME,
        "template_code": TEMPLATE_CODE,
        "endpoint": endpoint,
        **kw,
    }
    return AliyunSmsProvider(AliyunSettings(**values), **options)

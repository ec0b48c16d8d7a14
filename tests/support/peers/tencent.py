"""A local server that speaks Tencent Cloud SMS API 2021-01-11 ``SendSms``.

It checks each request as Tencent's API gateway does, with its own reading of the documented
TC3-HMAC-SHA256 signature (not the adapter's code): the ``Authorization`` header parsed, the
canonical request rebuilt from the headers named in ``SignedHeaders`` as received, the key
derived from the secret. A bad signature is ``AuthFailure.SignatureFailure``, an unknown id
``AuthFailure.SecretIdNotFound``, a skew over 5 minutes ``AuthFailure.SignatureExpire``. Like
Tencent it answers HTTP 200 and ``Content-Type: application/json`` for every outcome: a
request-level ``Response.Error``, or a ``SendStatusSet`` entry per number. ``receipt`` builds the
status callback push Tencent would send for a message it accepted.

Checked by hand against the official SDK (tencentcloud-sdk-python-sms 3.1.153, outside this
project): its requests are accepted, a wrong secret gets the same refusal, and it reads the
answers.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from notifier.providers.tencent import TencentSettings, TencentSmsProvider
from tests.support.peers.http_peer import JsonPeer, Reply, Request, adapter_options

SECRET_ID = "AKIDTestSecretId0000000000000000"
SECRET_KEY = "test-secret-key"
SDK_APP_ID = "1400006666"
REGION = "ap-guangzhou"
SIGN_NAME = "腾讯云测试"
# Another sign name the account has approved: a client of Notifier's own (its sms_sender).
CLIENT_SIGN_NAME = "腾讯商城"
SIGN_NAMES = (SIGN_NAME, CLIENT_SIGN_NAME)
TEMPLATE_ID = "449739"
# A notification's template ("{1}: your parcel {2} ships today").
SHIPPED = "2100001"
# The approved templates and how many variables each has.
TEMPLATES = {TEMPLATE_ID: 1, "449740": 2, SHIPPED: 2}
SKEW_SECONDS = 300
_AUTHORIZATION = re.compile(
    r"^TC3-HMAC-SHA256 Credential=(?P<id>[^/]+)/(?P<date>\d{4}-\d{2}-\d{2})/(?P<service>\w+)/tc3_request,"
    r" SignedHeaders=(?P<headers>[a-z0-9;-]+), Signature=(?P<signature>[0-9a-f]{64})$"
)


@dataclass(frozen=True)
class Answer:
    """A planned refusal: Tencent's code, for the whole request or for the number, or an HTTP status."""

    code: str
    message: str = "planned"
    whole_request: bool = False
    status: int = 200


THROTTLED = Answer("RequestLimitExceeded", "请求频率超限", whole_request=True)
RECIPIENT_LIMIT = Answer(
    "LimitExceeded.PhoneNumberOneHourLimit", "单个手机号1小时内下发短信条数超过设定的上限"
)
INVALID_NUMBER = Answer("InvalidParameterValue.IncorrectPhoneNumber", "手机号格式错误")
SERVER_ERROR = Answer("InternalError.OtherError", "其他错误", whole_request=True)
GATEWAY_ERROR = Answer("", "bad gateway", status=502)
VALUES_REFUSED = Answer("FailedOperation.ContainSensitiveWord", "短信内容中含有敏感词")
NO_BALANCE = Answer(
    "FailedOperation.InsufficientBalanceInSmsPackage", "套餐包余量不足", whole_request=True
)


@dataclass(frozen=True)
class Sent:
    """One message the fake accepted, as it came over the wire."""

    phone: str
    sign_name: str
    template: str
    params: list[str]
    sdk_app_id: str
    region: str
    serial_no: str


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def expected_signature(secret_key: str, request: Request, *, date: str, signed: list[str]) -> str:
    """TC3-HMAC-SHA256 over ``request`` as Tencent's documentation spells it out."""
    canonical_headers = "".join(
        f"{name}:{request.headers.get(name, '').strip().lower()}\n" for name in signed
    )
    canonical_request = (
        f"{request.method}\n/\n\n{canonical_headers}\n{';'.join(signed)}\n{_sha256(request.body)}"
    )
    timestamp = request.headers.get("x-tc-timestamp", "")
    string_to_sign = f"TC3-HMAC-SHA256\n{timestamp}\n{date}/sms/tc3_request\n{_sha256(canonical_request.encode())}"
    key = ("TC3" + secret_key).encode()
    for part in (date, "sms", "tc3_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()


class FakeTencent(JsonPeer[Answer]):
    """Tencent Cloud SMS on 127.0.0.1; ``sent`` holds what it accepted."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets = {SECRET_ID: SECRET_KEY}
        self.sent: list[Sent] = []

    def start(self) -> FakeTencent:
        super().start()
        return self

    def answer(self, request: Request) -> Reply:
        refused = self._gateway(request)
        if refused is not None:
            return refused
        try:
            fields: dict[str, Any] = json.loads(request.body)
        except ValueError:
            return _error("FailedOperation.JsonParseFail", "解析请求包体时候失败")
        return self._send_sms(fields, region=request.headers["x-tc-region"])

    def _gateway(self, request: Request) -> Reply | None:
        """Tencent's API gateway: method, action, version, region and the TC3 signature."""
        headers = request.headers
        if request.method != "POST" or headers.get("content-type") != "application/json":
            return _error("InvalidParameter", "expected a JSON POST")
        if headers.get("x-tc-action") != "SendSms":
            return _error("InvalidAction", "接口不存在")
        if headers.get("x-tc-version") != "2021-01-11":
            return _error("NoSuchVersion", "接口版本不存在")
        if not headers.get("x-tc-region"):
            return _error(
                "MissingParameter", "The request is missing a required parameter `Region`."
            )
        match = _AUTHORIZATION.match(headers.get("authorization", ""))
        if match is None or match["service"] != "sms":
            return _error("AuthFailure.InvalidAuthorization", "Authorization 不符合规范")
        secret = self.secrets.get(match["id"])
        if secret is None:
            return _error("AuthFailure.SecretIdNotFound", "密钥不存在")
        try:
            timestamp = int(headers.get("x-tc-timestamp", ""))
        except ValueError:
            return _error("AuthFailure.SignatureFailure", "X-TC-Timestamp is not a number")
        if abs(time.time() - timestamp) > SKEW_SECONDS:
            return _error("AuthFailure.SignatureExpire", "签名过期")
        signed = match["headers"].split(";")
        date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
        expected = expected_signature(secret, request, date=match["date"], signed=signed)
        if (
            match["date"] != date
            or not {"content-type", "host"} <= set(signed)
            or not hmac.compare_digest(expected, match["signature"])
        ):
            return _error(
                "AuthFailure.SignatureFailure",
                "The provided credentials could not be validated. Please check your signature is correct.",
            )
        return None

    def _send_sms(self, fields: dict[str, Any], *, region: str) -> Reply:
        """The SMS product: app, sign name, template and its variables, then each number."""
        phones = fields.get("PhoneNumberSet") or []
        params = fields.get("TemplateParamSet") or []
        if fields.get("SmsSdkAppId") != SDK_APP_ID:
            return _error("InvalidParameterValue.SdkAppIdNotExist", "SdkAppId不存在")
        if fields.get("SignName") not in SIGN_NAMES:
            return _error("FailedOperation.SignatureIncorrectOrUnapproved", "签名未审批或格式错误")
        count = TEMPLATES.get(str(fields.get("TemplateId")))
        if count is None:
            return _error("FailedOperation.TemplateIncorrectOrUnapproved", "模板未审批或内容不合规")
        if len(params) != count or not all(isinstance(p, str) for p in params):
            return _error(
                "FailedOperation.TemplateParamSetNotMatchApprovedTemplate",
                "请求内容与审核通过的模板内容不匹配",
            )
        statuses = []
        for phone in phones:
            planned = self.planned(phone)
            if planned is not None and planned.status != 200:
                return Reply(planned.status, {"message": planned.message}, "text/html")
            if planned is not None and planned.whole_request:
                return _error(planned.code, planned.message)
            statuses.append(self._status(phone, planned, fields, params, region))
        return Reply(200, {"Response": {"SendStatusSet": statuses, "RequestId": str(uuid.uuid4())}})

    def _status(
        self,
        phone: str,
        planned: Answer | None,
        fields: dict[str, Any],
        params: list[str],
        region: str,
    ) -> dict[str, Any]:
        iso = "CN" if phone.startswith("+86") else "XX"
        if planned is not None:
            return {
                "SerialNo": "",
                "PhoneNumber": phone,
                "Fee": 0,
                "SessionContext": "",
                "Code": planned.code,
                "Message": planned.message,
                "IsoCode": iso,
            }
        serial_no = f"2019:{uuid.uuid4().int % 10**19}"
        with self.lock:
            self.sent.append(
                Sent(
                    phone,
                    fields["SignName"],
                    str(fields["TemplateId"]),
                    params,
                    fields["SmsSdkAppId"],
                    region,
                    serial_no,
                )
            )
        return {
            "SerialNo": serial_no,
            "PhoneNumber": phone,
            "Fee": 1,
            "SessionContext": "",
            "Code": "Ok",
            "Message": "send success",
            "IsoCode": iso,
        }

    def receipt(
        self, serial_no: str, *, success: bool = True, errmsg: str = "DELIVRD"
    ) -> list[dict[str, Any]]:
        """A status callback push of one message this fake accepted, as Tencent sends it."""
        with self.lock:
            (sent,) = [s for s in self.sent if s.serial_no == serial_no]
        return [
            {
                "user_receive_time": datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                "nationcode": "86", "mobile": sent.phone.removeprefix("+86"),
                "report_status": "SUCCESS" if success else "FAIL", "errmsg": errmsg,
                "description": "用户短信送达成功" if success else "用户短信未送达", "sid": serial_no,
            }
        ]  # fmt: skip


def _error(code: str, message: str) -> Reply:
    return Reply(
        200,
        {"Response": {"Error": {"Code": code, "Message": message}, "RequestId": str(uuid.uuid4())}},
    )


def provider(endpoint: str, **kw: Any) -> TencentSmsProvider:
    """The adapter with the fake's credentials, app, sign name and template; ``kw`` overrides
    them and the adapter's options."""
    options = adapter_options(kw)
    values: dict[str, Any] = {
        "secret_id": SECRET_ID,
        "secret_key": SECRET_KEY,
        "sdk_app_id": SDK_APP_ID,
        "sign_name": SIGN_NAME,
        "template_id": TEMPLATE_ID,
        "region": REGION,
        "endpoint": endpoint,
        **kw,
    }
    return TencentSmsProvider(TencentSettings(**values), **options)

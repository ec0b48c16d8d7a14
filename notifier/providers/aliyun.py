"""SMS captchas through Aliyun's ``dysmsapi`` 2017-05-25 ``SendSms``, signed here.

Why not the SDK: the maintained ``alibabacloud-dysmsapi20170525`` (4.6.0) does take an endpoint,
a timeout and a pool size, but installs 29 packages (24 beyond requests and its own; about
40 MB), aiohttp, cryptography, APScheduler and aiofiles among them, to make one RPC call; the
legacy ``aliyun-python-sdk-core`` is frozen, pins an old jmespath and defaults to plain HTTP. So the adapter signs the call itself
(RPC signature V2, HMAC-SHA1, which Aliyun documents with a known answer) over ``requests``, the
client the Twilio SDK already brings, on one keep-alive pool shared by the worker's threads.

The call is ``POST /`` with every parameter, the signature included, in a form body (the RPC
style takes them from the query or the body alike; a body keeps phone numbers out of access
logs). Success is HTTP 200 with ``Code == "OK"`` and the message id in ``BizId``. Gateway errors
come as HTTP 4xx/5xx, SMS errors as 200 with another ``Code``; both are sorted by ``Code``:

=====================================  ==============================================
codes                                  raised
=====================================  ==============================================
``isv.MOBILE_NUMBER_ILLEGAL``,         :class:`PermanentProviderError`: no provider
``isv.MOBILE_COUNT_OVER_LIMIT``        can deliver it
``isv.BUSINESS_LIMIT_CONTROL``         :class:`RecipientThrottled` (per-number limit)
``isv.PARAM_LENGTH_LIMIT``,            :class:`NotForThisProvider`: the message's own
``isv.TEMPLATE_PARAMS_ILLEGAL``,       values; the next vendor may take them
``isv.SMS_CONTENT_ILLEGAL``
``Throttling*``, ``isp.SYSTEM_ERROR``, :class:`TransientProviderError`
``InternalError``,
``ServiceUnavailable``,
``SignatureNonceUsed``, any 5xx
anything else: signature, key,         :class:`OperatorError`, logged at ERROR
template, sign name, quota, balance,
clock (``InvalidTimeStamp.*``), and
codes not listed here
=====================================  ==============================================

A named SMS's approved template (:meth:`AliyunSmsProvider.send_template`) goes the same way, with
its ``TemplateCode`` and named parameters, under the client's sign name if it has one.

Captcha template variables: ``TemplateParam`` is ``{"code": "<code>"}``, and ``"minutes"`` as well when
``template_params`` names it (values are strings, as Aliyun requires). The product is not a
variable: it is the approved sign name (【Acme】) that carriers put in front of the text. A
verification-code template holds the validity as fixed text ("5分钟内有效"). Numbers: +86 goes
as its 11 digits, others as country code and number without ``+``, as Aliyun documents;
international numbers need an international template on the account.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal
from urllib.parse import quote

from pydantic import Field, SecretStr

from notifier.errors import TransientProviderError
from notifier.providers.signed_http import (
    ENDPOINT,
    TemplateSmsProvider,
    TemplateSmsSettings,
    check_e164,
    operator_error,
    refusal,
    template_values,
)
from notifier.settings import text

DEFAULT_ENDPOINT = "dysmsapi.aliyuncs.com"

_PERMANENT = frozenset({"isv.MOBILE_NUMBER_ILLEGAL", "isv.MOBILE_COUNT_OVER_LIMIT"})
_RECIPIENT_THROTTLED = frozenset({"isv.BUSINESS_LIMIT_CONTROL"})
# The message's own values: one too long for the template's variable, one it bans, content it
# bans (Aliyun's error code list): the next vendor's turn, failed for good when none takes it.
_NOT_OURS = frozenset({"isv.PARAM_LENGTH_LIMIT", "isv.TEMPLATE_PARAMS_ILLEGAL",
                       "isv.SMS_CONTENT_ILLEGAL"})  # fmt: skip
_TRANSIENT = frozenset({"isp.SYSTEM_ERROR", "InternalError", "ServiceUnavailable"})
# We never reuse a nonce, so a "used" one is the gateway's hiccup; the next try signs anew.
_TRANSIENT_PREFIXES = ("Throttling", "SignatureNonceUsed")


class AliyunSettings(TemplateSmsSettings):
    """``NOTIFIER_ALIYUN_*``: the account, the approved sign name and template, the endpoint."""

    prefix: ClassVar[str] = "aliyun"
    required: ClassVar[tuple[str, ...]] = (
        "access_key_id", "access_key_secret", "sign_name", "template_code",
    )  # fmt: skip

    access_key_id: str | None = None
    access_key_secret: SecretStr | None = None
    sign_name: str | None = None
    template_code: str | None = None
    endpoint: str = Field(default=DEFAULT_ENDPOINT, pattern=ENDPOINT)


def percent_encode(value: str) -> str:
    """Aliyun's percentEncode: UTF-8, RFC 3986 unreserved characters kept, space as ``%20``."""
    return quote(value, safe="~")


def rpc_signature(params: Mapping[str, str], *, secret: str, method: str = "POST") -> str:
    """Sign RPC parameters (all but ``Signature``) with V2: HMAC-SHA1, key ``secret + "&"``."""
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}" for k, v in sorted(params.items())
    )
    string_to_sign = f"{method}&{percent_encode('/')}&{percent_encode(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def wire_number(to: str) -> str:
    """+86 as its 11 digits; another country as country code and number, no ``+``."""
    return to[3:] if to.startswith("+86") else to[1:]


class AliyunSmsProvider(TemplateSmsProvider[AliyunSettings]):
    """Send captchas and approved templates with ``SendSms`` on one keep-alive session shared
    by the worker's threads.

    Holds no per-call state: every call signs its own parameters with a fresh nonce.
    """

    name = "aliyun"
    params_style: ClassVar[Literal["named", "ordered"]] = "named"

    def send_captcha(
        self, *, to: str, code: str, minutes: int, product: str, locale: str, purpose: str
    ) -> str:
        """Send the settings' approved template with the code; return Aliyun's ``BizId``."""
        names = self._template_params
        values = template_values(names, code=code, minutes=minutes)
        return self.send_template(
            to=to,
            template_id=text(self._settings.template_code),
            params=dict(zip(names, values, strict=True)),
        )

    def send_template(
        self,
        *,
        to: str,
        template_id: str,
        params: Mapping[str, str] | Sequence[str],
        sign_name: str | None = None,
    ) -> str:
        """Send approved template ``template_id`` with its named parameters (``TemplateParam``)
        under ``sign_name`` (None: the settings'); return Aliyun's ``BizId``."""
        if not isinstance(params, Mapping):
            raise operator_error(
                self.name, "params", "TemplateParam takes named parameters (a TOML table)"
            )
        signed = self._signed(
            {
                "PhoneNumbers": wire_number(check_e164(self.name, to)),
                "SignName": sign_name or text(self._settings.sign_name),
                "TemplateCode": template_id,
                "TemplateParam": json.dumps(dict(params), ensure_ascii=False),
            }
        )
        body = "&".join(f"{percent_encode(k)}={percent_encode(v)}" for k, v in signed.items())
        response = self._post(
            body.encode(),
            {
                "Content-Type": "application/x-www-form-urlencoded",
                "Accept": "application/json",
            },
        )
        return self._biz_id(response.status_code, response.content)

    def _signed(self, action_params: dict[str, str]) -> dict[str, str]:
        params = {
            "Action": "SendSms",
            "Version": "2017-05-25",
            "Format": "JSON",
            "AccessKeyId": text(self._settings.access_key_id),
            "SignatureMethod": "HMAC-SHA1",
            "SignatureVersion": "1.0",
            "SignatureNonce": uuid.uuid4().hex,
            "Timestamp": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            **action_params,
        }
        params["Signature"] = rpc_signature(params, secret=text(self._settings.access_key_secret))
        return params

    def _biz_id(self, status: int, content: bytes) -> str:
        try:
            answer: dict[str, Any] = json.loads(content)
            code = str(answer["Code"])
            if status == 200 and code == "OK":
                return str(answer["BizId"])
        except (ValueError, KeyError, TypeError) as e:
            error = f"aliyun HTTP {status}: unreadable answer"
            if status >= 500:
                raise TransientProviderError(error, provider=self.name) from e
            raise operator_error(self.name, f"HTTP {status}", "unreadable answer") from e
        raise refusal(
            self.name,
            code,
            str(answer.get("Message", "")),
            permanent=_PERMANENT,
            throttled=_RECIPIENT_THROTTLED,
            not_ours=_NOT_OURS,
            transient=code in _TRANSIENT or code.startswith(_TRANSIENT_PREFIXES) or status >= 500,
        )

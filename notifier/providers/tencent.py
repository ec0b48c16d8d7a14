"""SMS captchas through Tencent Cloud SMS API 2021-01-11 ``SendSms``, signed here (TC3-HMAC-SHA256).

Why not the SDK: ``tencentcloud-sdk-python-sms`` (with ``-common``) is light (only ``requests``)
and takes an endpoint and a timeout, but its connection pool is not ours to size: the session
hides at ``client.request.conn._session`` with requests' default of 10 connections (a worker has
32 threads), and the one public knob, ``pre_conn_pool_size``, runs a thread per pool that
keeps pre-opening connections (with the deprecated ``Thread.setDaemon``). It also calls
``datetime.utcfromtimestamp`` on every send (deprecated from Python 3.12), folds every network
fault into one string code, ships no type hints, and needs two packages pinned to the same
version. Signing one POST is ~20 lines, and the
signer below is checked against a vector the official SDK computed (see the unit tests).

The call is ``POST /`` with a JSON body and the headers ``X-TC-Action: SendSms``,
``X-TC-Version: 2021-01-11``, ``X-TC-Timestamp``, ``X-TC-Region`` and ``Authorization``. Tencent
answers HTTP 200 in every case: a whole-request failure is ``Response.Error.Code``; otherwise
each number has its own ``SendStatusSet[i].Code``, ``"Ok"`` with its ``SerialNo`` on success.
Codes are sorted so:

==============================================  ==========================================
codes                                           raised
==============================================  ==========================================
``InvalidParameterValue.IncorrectPhoneNumber``, :class:`PermanentProviderError`
``FailedOperation.PhoneNumberParseFail``,
``FailedOperation.PhoneNumberInBlacklist``
``LimitExceeded.PhoneNumber*Limit``,            :class:`RecipientThrottled`
``LimitExceeded.DeliveryFrequencyLimit``
``InvalidParameterValue.TemplateParameter``     :class:`NotForThisProvider`: the message's
``FormatError``, ``InvalidParameterValue.``     own values; the next vendor may take them
``ContentLengthLimit``, ``FailedOperation.``
``ContainSensitiveWord``
``InternalError*``, ``RequestLimitExceeded*``,  :class:`TransientProviderError`
HTTP 429 and 5xx
anything else: ``AuthFailure.*``, sign name,    :class:`OperatorError`, logged at ERROR
template, app id, quota, balance, a country
Tencent does not serve, codes not listed here
==============================================  ==========================================

A named SMS's approved template (:meth:`TencentSmsProvider.send_template`) goes the same way, with
its ``TemplateId`` and parameters in order, under the client's sign name if it has one.

Captcha template variables: ``TemplateParamSet`` is ``[code]``, or ``[code, minutes]`` when
``template_params`` is ``("code", "minutes")`` (for a template such as
"{1}为您的验证码，请于{2}分钟内填写"); the count must match the approved template. The product
is the approved sign name, not a variable. Numbers go in E.164 (``+8613800138000``), which
Tencent documents for mainland and international numbers alike.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, ClassVar, Literal
from urllib.parse import urlsplit

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

DEFAULT_ENDPOINT = "sms.tencentcloudapi.com"
SERVICE = "sms"
CONTENT_TYPE = "application/json"

_PERMANENT = frozenset(
    {
        "InvalidParameterValue.IncorrectPhoneNumber",
        "FailedOperation.PhoneNumberParseFail",
        "FailedOperation.PhoneNumberInBlacklist",
    }
)
_RECIPIENT_THROTTLED = frozenset(
    {
        "LimitExceeded.PhoneNumberThirtySecondLimit",
        "LimitExceeded.PhoneNumberOneHourLimit",
        "LimitExceeded.PhoneNumberDailyLimit",
        "LimitExceeded.PhoneNumberSameContentDailyLimit",
        "LimitExceeded.DeliveryFrequencyLimit",
    }
)
_TRANSIENT_PREFIXES = ("InternalError", "RequestLimitExceeded")
# The message's own values: a verification template's variable that is not 0-6 digits, content
# too long, a word Tencent bans (its SMS error codes): the next vendor's turn.
_NOT_OURS = frozenset(
    {
        "InvalidParameterValue.TemplateParameterFormatError",
        "InvalidParameterValue.ContentLengthLimit",
        "FailedOperation.ContainSensitiveWord",
    }
)


class TencentSettings(TemplateSmsSettings):
    """``NOTIFIER_TENCENT_*``: the account, the SMS app, the approved sign name and template,
    the region and the endpoint."""

    prefix: ClassVar[str] = "tencent"
    required: ClassVar[tuple[str, ...]] = (
        "secret_id", "secret_key", "sdk_app_id", "sign_name", "template_id",
    )  # fmt: skip

    secret_id: str | None = None
    secret_key: SecretStr | None = None
    sdk_app_id: str | None = None
    sign_name: str | None = None
    template_id: str | None = None
    region: str = "ap-guangzhou"
    endpoint: str = Field(default=DEFAULT_ENDPOINT, pattern=ENDPOINT)


def _hmac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def tc3_authorization(
    *, secret_id: str, secret_key: str, host: str, timestamp: int, body: bytes
) -> str:
    """The ``Authorization`` header for a JSON ``POST /``, signing ``content-type`` and ``host``."""
    date = datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%d")
    scope = f"{date}/{SERVICE}/tc3_request"
    canonical_request = "\n".join(
        [
            "POST",
            "/",
            "",
            f"content-type:{CONTENT_TYPE}\nhost:{host}\n",
            "content-type;host",
            hashlib.sha256(body).hexdigest(),
        ]
    )
    string_to_sign = "\n".join(
        [
            "TC3-HMAC-SHA256",
            str(timestamp),
            scope,
            hashlib.sha256(canonical_request.encode()).hexdigest(),
        ]
    )
    key = _hmac(_hmac(_hmac(f"TC3{secret_key}".encode(), date), SERVICE), "tc3_request")
    signature = hmac.new(key, string_to_sign.encode(), hashlib.sha256).hexdigest()
    return (
        f"TC3-HMAC-SHA256 Credential={secret_id}/{scope}, "
        f"SignedHeaders=content-type;host, Signature={signature}"
    )


class TencentSmsProvider(TemplateSmsProvider[TencentSettings]):
    """Send captchas and approved templates with ``SendSms`` on one keep-alive session shared
    by the worker's threads.

    Holds no per-call state: every call signs its own body and timestamp.
    """

    name = "tencent"
    params_style: ClassVar[Literal["named", "ordered"]] = "ordered"

    @cached_property
    def _host(self) -> str:
        return urlsplit(self._url).netloc.lower()

    def send_captcha(
        self, *, to: str, code: str, minutes: int, product: str, locale: str, purpose: str
    ) -> str:
        """Send the settings' approved template with the code; return Tencent's ``SerialNo``."""
        return self.send_template(
            to=to,
            template_id=text(self._settings.template_id),
            params=template_values(self._template_params, code=code, minutes=minutes),
        )

    def send_template(
        self,
        *,
        to: str,
        template_id: str,
        params: Mapping[str, str] | Sequence[str],
        sign_name: str | None = None,
    ) -> str:
        """Send approved template ``template_id`` with its parameters in order
        (``TemplateParamSet``) under ``sign_name`` (None: the settings'); return Tencent's
        ``SerialNo``."""
        if isinstance(params, Mapping | str):
            raise operator_error(
                self.name, "params", "TemplateParamSet takes parameters in order (a TOML array)"
            )
        body = json.dumps(
            {
                "PhoneNumberSet": [check_e164(self.name, to)],
                "SmsSdkAppId": text(self._settings.sdk_app_id),
                "SignName": sign_name or text(self._settings.sign_name),
                "TemplateId": template_id,
                "TemplateParamSet": list(params),
            },
            ensure_ascii=False,
        ).encode()
        timestamp = int(datetime.now(UTC).timestamp())
        headers = {
            "Content-Type": CONTENT_TYPE,
            "Host": self._host,
            "X-TC-Action": "SendSms",
            "X-TC-Version": "2021-01-11",
            "X-TC-Timestamp": str(timestamp),
            "X-TC-Region": self._settings.region,
            "Authorization": tc3_authorization(
                secret_id=text(self._settings.secret_id),
                secret_key=text(self._settings.secret_key),
                host=self._host,
                timestamp=timestamp,
                body=body,
            ),
        }
        response = self._post(body, headers)
        return self._serial_no(response.status_code, response.content)

    def _serial_no(self, status: int, content: bytes) -> str:
        if status != 200:
            error = f"tencent HTTP {status}"
            if status == 429 or status >= 500:
                raise TransientProviderError(error, provider=self.name)
            raise operator_error(self.name, f"HTTP {status}", "unexpected status")
        try:
            answer: dict[str, Any] = json.loads(content)["Response"]
            # A whole-request error, or the outcome for our one number.
            outcome = answer.get("Error") or answer["SendStatusSet"][0]
            code = str(outcome["Code"])
            if code == "Ok" and "Error" not in answer:
                return str(outcome["SerialNo"])
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise operator_error(self.name, "HTTP 200", "unreadable answer") from e
        raise refusal(
            self.name,
            code,
            str(outcome.get("Message", "")),
            permanent=_PERMANENT,
            throttled=_RECIPIENT_THROTTLED,
            not_ours=_NOT_OURS,
            transient=code.startswith(_TRANSIENT_PREFIXES),
        )

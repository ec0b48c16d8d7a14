"""Mail through Amazon SES (API v2 ``SendEmail``) with boto3, as the raw MIME SMTP would send.

What is boto3's: the request (its JSON, the raw message in base64), the Signature Version 4, the
credentials (the settings' key pair, or boto3's usual chain: the environment, the shared files,
the instance's or the task's role), the reading of the answer and of its errors. What is ours:
the message (:mod:`notifier.providers.mime`: our headers, the one-click unsubscribe headers, DKIM),
and the HTTP call itself. botocore hands every signed request to the handlers of its documented
``before-send`` event, and sends it itself only when none answers it ("Botocore Events",
``before-send``: "allows a response to be returned that fulfills the request"): ours sends it
on the pools of a :class:`~notifier.deadline.DeadlineAdapter` (straight, not through a
``requests`` session, unless a proxy is set: see ``DeadlineAdapter.urlopen``), so a call has the
whole-call deadline and the kept connections of every other provider, and botocore's own retries
are off (a retry is the task's backoff, or the next provider's turn).

SES reports what became of a mail (deliveries, bounces, complaints) by its own ``MessageId``,
which is the record's ``provider_ref``; the notification's id goes with each mail as the message
tag ``notification_id`` too, which SES puts in the events of a configuration set.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import requests
from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import NoDecode

from notifier.deadline import DeadlineAdapter, session
from notifier.errors import NotForThisProvider, ProviderError, TransientProviderError
from notifier.providers.base import OutgoingMail
from notifier.providers.dkim import DkimSigner
from notifier.providers.mime import build_wire
from notifier.providers.signed_http import operator_error, refusal
from notifier.settings import Settings, VendorSettings, https_in_production, text

if TYPE_CHECKING:
    from botocore.awsrequest import AWSPreparedRequest, AWSResponse
    from botocore.exceptions import ClientError

log = logging.getLogger(__name__)

# SES sets its own Message-ID and Date on every mail it sends: signed, they would break our
# DKIM signature on the way (SES Developer Guide, "Amazon SES header fields": "If you provide a
# Message-ID header, Amazon SES overrides the header with its own value", and the same of Date;
# "Manual DKIM signing in Amazon SES": do not sign Message-ID, Date, Return-Path, Bounces-To).
SES_REWRITES = frozenset({b"message-id", b"date"})

# How SendEmail's errors are sorted. Its own are those of botocore's service model
# (botocore/data/sesv2/2019-09-27/service-2.json, operation SendEmail): TooManyRequestsException
# (429), LimitExceededException, AccountSuspendedException, SendingPausedException,
# MessageRejected, MailFromDomainNotVerifiedException, BadRequestException (400) and
# NotFoundException (404); the rest are the errors every AWS API may answer (the SES API
# Reference, "Common Errors": ThrottlingException, the authentication and signature errors,
# InternalFailure and ServiceUnavailable, 5xx).
#
# Load: SES will take the mail later, or the next provider now. LimitExceededException is the
# account's sending rate or its 24-hour quota ("Sending quotas in Amazon SES").
# ("Throttling" is how AWS's query APIs, SES v1's among them, spell the common error.)
THROTTLED = frozenset(
    {"TooManyRequestsException", "ThrottlingException", "Throttling", "LimitExceededException"}
)
# The message itself: "The message can't be sent because it contains invalid content"
# (MessageRejected, but see _sorted for the one that is about our account), "The input you
# provided is invalid" (BadRequestException: a recipient SES cannot parse, a message over
# 10 MB). Another provider, or a later try, would be refused the same.
PERMANENT = frozenset({"MessageRejected", "BadRequestException"})
ACCOUNT_REJECTED = re.compile(r"not verified|sending paused", re.IGNORECASE)
# A BadRequestException about our configuration, not the message: the sender identity's default
# configuration set deleted ("your call to Amazon SES fails with a 'bad request' error": the
# Developer Guide, "Managing default configuration sets"), a tenant or an IP pool gone.
CONFIGURATION_REFUSED = re.compile(
    r"configuration set|identity|dedicated ip pool|tenant", re.IGNORECASE
)
# Everything else is our account's or our configuration's: AccountSuspendedException,
# SendingPausedException (the account's or the configuration set's sending is paused),
# MailFromDomainNotVerifiedException, NotFoundException (no such configuration set), and the
# authentication errors (UnrecognizedClientException, InvalidSignatureException,
# AccessDeniedException, ExpiredTokenException...): the operator's to fix, so logged at ERROR,
# and transient for the mail, which the next provider may send meanwhile.


# An SNS topic's ARN: arn:<partition>:sns:<region>:<account>:<name> (AWS's "Amazon Resource
# Names"; a topic's name is 1 to 256 letters, digits, '-' and '_', '.fifo' for a FIFO topic).
TOPIC_ARN = r"arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?"


class SesSettings(VendorSettings):
    """``NOTIFIER_SES_*``: the region, the credentials (unset: boto3's chain), the configuration
    set whose event destinations report deliveries, bounces and complaints, where the API is
    (unset: the region's own endpoint), and the SNS topics whose events
    ``POST /v1/receipts/ses`` takes (unset: it refuses all)."""

    prefix: ClassVar[str] = "ses"
    required: ClassVar[tuple[str, ...]] = ("region",)

    region: str | None = Field(default=None, pattern=r"^[a-z0-9-]{1,32}$")
    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    # SES: up to 64 characters, letters, digits, "-" and "_".
    configuration_set: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_-]{1,64}$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+/?$")
    # Seconds one call may take in all, the answer read included, however slowly it comes.
    timeout: float = Field(default=10.0, gt=0)
    # A comma list of SNS topic ARNs; a message of any other topic is refused before anything.
    topic_arns: Annotated[tuple[str, ...], NoDecode] = ()

    @field_validator("topic_arns", mode="before")
    @classmethod
    def _comma_list(cls, value: object) -> object:
        if isinstance(value, str):
            arns = tuple(arn.strip() for arn in value.split(",") if arn.strip())
            bad = [arn for arn in arns if not re.fullmatch(TOPIC_ARN, arn)]
            if bad:
                raise ValueError(f"not an SNS topic ARN: {bad[0]!r}")
            return arns
        return value

    @model_validator(mode="after")
    def _key_pair(self) -> SesSettings:
        self.paired(
            "access_key_id", "secret_access_key", "or neither, for boto3's credential chain"
        )
        return self

    def check(self, settings: Settings) -> None:
        """A listed SES needs its region; in production its endpoint is https."""
        super().check(settings)
        https_in_production(settings, self.variable("endpoint_url"), self.endpoint_url, here=False)


class _Body:
    """An answer's body as botocore reads it (``AWSResponse.content`` joins ``raw.stream()``)."""

    def __init__(self, content: bytes) -> None:
        self._content = content

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._content


class SesMailProvider:
    """Send with ``sesv2.send_email`` on one boto3 client shared by the worker's threads."""

    name = "ses"

    def __init__(
        self, settings: SesSettings, *, max_connections: int = 32, dkim: DkimSigner | None = None
    ) -> None:
        """``max_connections``: kept-alive HTTPS connections, one per worker thread, so none is
        opened per mail. ``dkim``: signs each mail with its From domain's key (all but the
        headers SES rewrites)."""
        self._settings = settings
        self._dkim = dkim
        # No automatic retries: SendEmail is not idempotent, so a retry is the task's decision.
        self._adapter = DeadlineAdapter(total=settings.timeout, max_connections=max_connections)
        self._session = session(self._adapter)
        # Made once a process (a client takes tens of milliseconds to build, and signs and
        # parses each call); boto3's clients are safe to share between threads. boto3 and
        # botocore are imported here, not with the module: they take every process that loads
        # the providers 50 ms to import, and only a deployment that lists SES needs them.
        import boto3
        from botocore.config import Config

        self._client: Any = boto3.session.Session().client(
            "sesv2",
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id or None,
            aws_secret_access_key=text(settings.secret_access_key) or None,
            endpoint_url=settings.endpoint_url,
            config=Config(
                retries={"total_max_attempts": 1},
                # Our request is built from typed fields, and SES checks what it takes: the
                # client's own check of every call's shape is a tenth of its CPU.
                parameter_validation=False,
                connect_timeout=settings.timeout,
                read_timeout=settings.timeout,
            ),
        )
        self._client.meta.events.register("before-send.sesv2.SendEmail", self._transmit)

    def send_mail(self, *, message: OutgoingMail) -> str:
        """Send the raw message; SES's ``MessageId`` is the provider's id of it."""
        wire = build_wire(message, self._dkim, unsigned=SES_REWRITES)
        if wire.smtputf8:
            # SES v2 "does not support the SMTPUTF8 extension" (API Reference, Destination):
            # the next provider's turn (SMTP takes it, where the relay offers SMTPUTF8).
            raise NotForThisProvider(
                "SES does not take SMTPUTF8, which an address needs", provider=self.name
            )
        destination = {
            field: list(addresses)
            for field, addresses in (
                ("ToAddresses", message.to), ("CcAddresses", message.cc),
                ("BccAddresses", message.bcc),
            )
            if addresses
        }  # fmt: skip
        request: dict[str, Any] = {
            # The recipients, Bcc included (the raw message names none of those): SES sends to
            # these, not to the headers.
            "Destination": destination,
            "Content": {"Raw": {"Data": wire.data}},
            "EmailTags": [{"Name": "notification_id", "Value": message.notification_id}],
        }
        if self._settings.configuration_set:
            request["ConfigurationSetName"] = self._settings.configuration_set
        from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

        try:
            answer = self._client.send_email(**request)
        except ClientError as e:
            raise self._sorted(e) from e
        except NoCredentialsError as e:
            raise operator_error(self.name, "NoCredentials", str(e)) from e
        except (BotoCoreError, requests.RequestException) as e:
            raise TransientProviderError(
                f"SES unreachable: {type(e).__name__}: {e}", provider=self.name
            ) from e
        return str(answer["MessageId"])

    def _transmit(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse:
        """Send botocore's signed request on our connections; botocore reads the answer."""
        from botocore.awsrequest import AWSResponse

        headers = dict(request.headers.items())  # botocore's values are bytes, as sent
        if self._session.trust_env:
            # A proxy is set (deadline.session): requests knows how to go through it.
            via = self._session.request(
                request.method, request.url, headers=headers, data=request.body,
                allow_redirects=False,
            )  # fmt: skip
            return AWSResponse(request.url, via.status_code, via.headers, _Body(via.content))
        answer = self._adapter.urlopen(
            request.method, request.url, headers=headers, body=request.body,
            verify=self._session.verify,
        )  # fmt: skip
        return AWSResponse(request.url, answer.status, answer.headers, _Body(answer.data))

    def _sorted(self, e: ClientError) -> ProviderError:
        """Our provider error for an error SES answered (see THROTTLED, PERMANENT)."""
        error = e.response.get("Error", {})
        code = str(error.get("Code") or "Unknown")
        message = str(error.get("Message") or "")
        status = int(e.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        if code == "BadRequestException" and CONFIGURATION_REFUSED.search(message):
            return operator_error(self.name, code, message)
        if code == "MessageRejected" and ACCOUNT_REJECTED.search(message):
            # "Email address is not verified. The following identities failed the check...":
            # the sender's identity, or in the sandbox a recipient's; "Sending paused for this
            # account" (SES pauses an account whose bounce or complaint rate ran high, and has
            # said so as MessageRejected as well as SendingPausedException: GoodDollar/
            # GoodServer#419, SES SMTP's "554 Message rejected: Sending paused"): the account's
            # to fix, and the next provider's turn meanwhile.
            return operator_error(self.name, code, message)
        transient = code in THROTTLED or status == 429 or status >= 500
        return refusal(
            self.name, code, message, permanent=PERMANENT, throttled=frozenset(),
            transient=transient,
        )  # fmt: skip

    def close(self) -> None:
        """Close the kept-alive connections; the provider may be used again afterwards."""
        self._session.close()

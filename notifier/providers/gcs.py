"""Google Cloud Storage browser upload forms, made by ``google-cloud-storage``'s own
``Client.generate_signed_post_policy_v4`` with a service account's key file.

The answer is a V4 POST policy: its conditions (the bucket, the key, the size range, the content
type, and the library's ``x-goog-date``, ``x-goog-credential`` and ``x-goog-algorithm``) as JSON,
base64-encoded, and ``x-goog-signature``, the hex RSA-SHA256 signature of that base64 with the
service account's private key (``GOOG4-RSA-SHA256``). Signing is local: no request leaves
Notifier to mint it. The form goes to ``<endpoint>/<bucket>/`` (path-style): the library's
``scheme`` (``http`` unless told) applies only to a bucket-bound host name, which is not used.

A form for a prefix is signed here, in the library's very shape, with one condition changed:
the library always holds the key to exactly what it is given, and Cloud Storage puts the file's
name in place of ``${filename}`` before it checks the policy ("Failed condition:
{"key":"${filename}"}", googleapis/nodejs-storage#2083), so ``{"key": "u/${filename}"}`` refuses
every upload. Here the key is ``["starts-with", "$key", "<prefix>"]``, as S3's and OSS's are.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import Field

from notifier.providers.forms import FILENAME, conditions, form_key, signed_expiration
from notifier.schemas import GcsUploadRequest, S3UploadForm
from notifier.settings import Settings, StoreEndpoint, VendorSettings, https_in_production

if TYPE_CHECKING:
    from google.cloud.storage import Client
    from google.oauth2.service_account import Credentials


def service_account(path: str) -> Credentials:
    """The signing credentials of a service account's JSON key file; a ValueError naming the
    variable when the file cannot be read as one."""
    try:
        with open(path, encoding="utf-8") as file:
            return _credentials(file.read())
    except (OSError, ValueError) as e:
        raise ValueError(f"NOTIFIER_GCS_CREDENTIALS_FILE: not a service account key ({e})") from e


@lru_cache(maxsize=4)
def _credentials(content: str) -> Credentials:
    """The credentials of a key file's ``content``, made once a process: the settings' check
    at start-up and the store both read the file, and loading its RSA key (OpenSSL checks the
    key whole) takes 35 ms of CPU each time. Signing alters nothing in them."""
    # Imported when a key file is set: google-cloud-storage takes most of a second to import,
    # which no process should pay for a store it does not use.
    from google.oauth2.service_account import Credentials

    credentials: Credentials = Credentials.from_service_account_info(json.loads(content))  # type: ignore[no-untyped-call]
    return credentials


class GcsSettings(VendorSettings):
    """``NOTIFIER_GCS_*``: the service account's key file forms are signed with, and the
    endpoint they are posted to (``<endpoint>/<bucket>/``)."""

    prefix: ClassVar[str] = "gcs"

    credentials_file: str | None = Field(default=None, min_length=1)
    endpoint: StoreEndpoint = "https://storage.googleapis.com"

    def check(self, settings: Settings) -> None:
        """The key file reads as a service account's (every process, at start-up, rather than
        at a user's upload); in production the endpoint is https."""
        if self.credentials_file:
            service_account(self.credentials_file)
        https_in_production(settings, self.variable("endpoint"), self.endpoint, here=False)


class GcsUploads:
    """Google Cloud Storage as an upload store: a V4 POST policy form."""

    name, title, request = "gcs", "Cloud Storage", GcsUploadRequest

    def __init__(self, settings: GcsSettings) -> None:
        self._client: Client | None = None
        self._credentials: Credentials | None = None
        if settings.credentials_file:
            from google.cloud.storage import Client

            credentials = self._credentials = service_account(settings.credentials_file)
            # Made once; building it reads nothing from the network (a project is given).
            self._client = Client(
                project=credentials.project_id,
                credentials=credentials,
                client_options={"api_endpoint": settings.endpoint},
            )

    def check(self, request: GcsUploadRequest, *, require_https: bool) -> None:
        pass  # the model holds every rule: nothing depends on another field or the environment

    def missing(self) -> str | None:
        return None if self._client else "NOTIFIER_GCS_CREDENTIALS_FILE"

    def mint(self, request: GcsUploadRequest) -> S3UploadForm:
        assert self._client is not None  # missing() said so
        fields, rules = conditions(request)
        post: dict[str, Any]
        if request.key is not None:
            post = self._client.generate_signed_post_policy_v4(
                request.bucket,
                request.key,  # the library adds it as an exact condition
                expiration=timedelta(seconds=request.expires_in),
                conditions=list(rules),  # a copy: the library appends its own to the list
            )
        else:
            post = self._prefix_form(request, rules)
        return S3UploadForm(
            url=post["url"],
            fields={**fields, **post["fields"]},
            bucket=request.bucket,
            key=request.key,
            expires_at=signed_expiration(
                post["fields"]["policy"], rules, signer="google-cloud-storage"
            ),
        )

    def _prefix_form(self, request: GcsUploadRequest, rules: list[Any]) -> dict[str, Any]:
        """What ``generate_signed_post_policy_v4`` answers, for a key under a prefix (see the
        module's docstring): its conditions, in its order, its fields, its URL, its signing."""
        assert self._client is not None and self._credentials is not None
        credentials = self._credentials
        now = datetime.now(UTC).replace(tzinfo=None)
        credential = f"{credentials.signer_email}/{now:%Y%m%d}/auto/storage/goog4_request"
        signing = {
            "x-goog-date": f"{now:%Y%m%dT%H%M%SZ}",
            "x-goog-credential": credential,
            "x-goog-algorithm": "GOOG4-RSA-SHA256",
        }
        prefix = form_key(request).removesuffix(FILENAME)
        policy = json.dumps(
            {
                "conditions": [
                    *rules,
                    {"bucket": request.bucket},
                    ["starts-with", "$key", prefix],
                    *({name: value} for name, value in signing.items()),
                ],
                "expiration": (now + timedelta(seconds=request.expires_in)).isoformat() + "Z",
            },
            separators=(",", ":"),
        )
        encoded = base64.b64encode(policy.encode())
        signature = credentials.sign_bytes(encoded).hex()
        fields = {"key": form_key(request), **dict(reversed(signing.items())),
                  "x-goog-signature": signature, "policy": encoded.decode()}  # fmt: skip
        return {"url": f"{self._client.api_endpoint}/{request.bucket}/", "fields": fields}

"""S3 (and S3-compatible) browser upload forms, made by boto3's own ``generate_presigned_post``.

The answer is a presigned POST (AWS Signature Version 4): a policy that names the bucket, the
key (or its prefix), the size range and the content type, signed with the store's secret. The
browser POSTs the form's fields and the file to the URL; the store checks the policy and the
signature, and refuses what the policy does not allow. No request leaves Notifier to mint it.

With ``NOTIFIER_S3_ENDPOINT_URL`` the form goes to an S3-compatible store instead of AWS:
MinIO, Ceph, Cloudflare R2, Aliyun OSS or Tencent COS through their S3 endpoints.
"""

from __future__ import annotations

import functools
import threading
from typing import Any, ClassVar, Literal

from pydantic import Field, SecretStr, model_validator

from notifier.providers.forms import conditions, form_key, signed_expiration
from notifier.schemas import S3UploadForm, S3UploadRequest
from notifier.settings import Settings, VendorSettings, https_in_production, text


class S3Settings(VendorSettings):
    """``NOTIFIER_S3_*``. No endpoint: AWS in ``region``; an endpoint: an S3-compatible store
    (MinIO, Ceph, R2, OSS, COS). Path-style addressing (https://endpoint/bucket) for stores that
    do not serve buckets as host names."""

    prefix: ClassVar[str] = "s3"

    access_key_id: str | None = None
    secret_access_key: SecretStr | None = None
    region: str = Field(default="us-east-1", pattern=r"^[a-z0-9-]{1,32}$")
    endpoint_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+/?$")
    addressing_style: Literal["auto", "path", "virtual"] = "auto"

    @model_validator(mode="after")
    def _key_pair(self) -> S3Settings:
        self.paired("access_key_id", "secret_access_key")
        return self

    def check(self, settings: Settings) -> None:
        """In production the endpoint is https: browsers post the form there from https pages,
        with the store's signature in it."""
        https_in_production(settings, self.variable("endpoint_url"), self.endpoint_url, here=False)


_made = threading.Lock()


@functools.cache
def _client(key_id: str | None, secret: str | None, region: str, endpoint: str | None,
            addressing_style: str) -> Any:  # fmt: skip
    """boto3's S3 client for these settings, made once a process and shared (boto3's clients
    are safe across threads): each new one loads and parses S3's service model again, 0.1 to
    0.2 s of CPU, which every app built on the same settings (each test's) paid."""
    with _made:  # making one is not safe across threads
        # Imported on first use: boto3 and botocore take every process that loads the
        # providers 50 ms to import, and most never mint a form.
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3",
            aws_access_key_id=key_id,
            aws_secret_access_key=secret,
            region_name=region,
            endpoint_url=endpoint,
            config=Config(signature_version="s3v4", s3={"addressing_style": addressing_style}),
        )


class S3Uploads:
    """S3 as an upload store."""

    name, title, request = "s3", "S3", S3UploadRequest

    def __init__(self, settings: S3Settings) -> None:
        self._settings = settings

    def check(self, request: S3UploadRequest, *, require_https: bool) -> None:
        pass  # the model holds every rule: nothing depends on another field or the environment

    def missing(self) -> str | None:
        return self._settings.unset("access_key_id", "secret_access_key")

    def _boto(self) -> Any:
        s = self._settings
        # On AWS, "auto" is the bucket's host in its own region (https://avatars.s3.me-south-1
        # .amazonaws.com/): boto3's own auto signs a form for the global host, which a bucket in
        # a region opened since March 2019 answers with 400 IllegalLocationConstraint, and an
        # older region with a redirect no browser follows across origins (boto3#2187, #1982).
        # A bucket whose name has dots still gets the path form (no certificate covers it).
        style = (
            "virtual" if s.addressing_style == "auto" and not s.endpoint_url else s.addressing_style
        )
        return _client(s.access_key_id, text(s.secret_access_key), s.region, s.endpoint_url, style)

    def mint(self, request: S3UploadRequest) -> S3UploadForm:
        fields, rules = conditions(request)
        post = self._boto().generate_presigned_post(
            Bucket=request.bucket,
            Key=form_key(request),
            Fields=fields,
            Conditions=rules,
            ExpiresIn=request.expires_in,
        )
        return S3UploadForm(
            url=post["url"],
            fields=post["fields"],
            bucket=request.bucket,
            key=request.key,
            expires_at=signed_expiration(post["fields"]["policy"], rules, signer="boto3"),
        )

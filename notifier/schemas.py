"""Request and response models of the HTTP API (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, EmailStr, Field, field_validator

MAX_RECIPIENTS = 50
MAX_SCHEDULE_AHEAD = timedelta(days=30)
Status = Literal["scheduled", "queued", "sending", "retrying", "sent", "failed", "cancelled"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class MailRequest(Strict):
    """``POST /v1/mail``."""

    to: list[EmailStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    cc: list[EmailStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    bcc: list[EmailStr] = Field(default_factory=list, max_length=MAX_RECIPIENTS)
    reply_to: EmailStr | None = None
    subject: str | None = Field(None, min_length=1, max_length=998)
    text: str | None = Field(None, max_length=512 * 1024)
    html: str | None = Field(None, max_length=512 * 1024)
    template: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")
    data: dict[str, Any] = Field(default_factory=dict)
    send_at: AwareDatetime | None = None

    @field_validator("subject")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and ("\r" in value or "\n" in value):
            raise ValueError("must not contain CR or LF")
        return value

    @field_validator("send_at")
    @classmethod
    def _within_reach(cls, value: datetime | None) -> datetime | None:
        if value is not None and value - datetime.now(UTC) > MAX_SCHEDULE_AHEAD:
            raise ValueError("must be at most 30 days ahead")
        return value


class Links(BaseModel):
    self: str


class Accepted(BaseModel):
    """The answer to a send: ``202 Accepted``."""

    id: str
    status: Literal["queued", "scheduled"]
    links: Links


class NotificationView(BaseModel):
    """``GET /v1/notifications/<id>``."""

    id: str
    kind: Literal["mail", "sms_captcha"]
    status: Status
    attempts: int
    provider: str | None
    error: str | None
    created_at: str
    updated_at: str
    send_at: str | None

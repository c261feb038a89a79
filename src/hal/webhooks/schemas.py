"""Webhook endpoint bodies: the admin API's requests and answers (README "Webhooks")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictStr

from hal.webhooks.rules import DELIVERED_TYPES, MAX_URL_LENGTH

WebhookUrl = Annotated[StrictStr, Field(min_length=1, max_length=MAX_URL_LENGTH)]
EventTypes = Annotated[
    list[Annotated[StrictStr, Field(max_length=64)]],
    Field(
        max_length=len(DELIVERED_TYPES),
        description="change types to deliver; absent or empty: every type but event.tracked",
    ),
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class WebhookInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class WebhookEndpointCreate(WebhookInput):
    url: WebhookUrl
    events: EventTypes = Field(default_factory=list)


class WebhookEndpointPatch(WebhookInput):
    url: WebhookUrl | None = None
    events: EventTypes | None = None
    enabled: StrictBool | None = Field(
        default=None, description="true re-enables a disabled endpoint; its backlog follows"
    )


class WebhookEndpointOut(BaseModel):
    id: int
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    previous_secret_expires_at: datetime | None = Field(
        description="until then deliveries are also signed with the previous secret"
    )
    created_at: datetime


class WebhookEndpointCreated(WebhookEndpointOut):
    secret: str = Field(description="`whsec_...`, shown once; verify deliveries with it")


class WebhookEndpointList(BaseModel):
    items: list[WebhookEndpointOut]


class RotatedWebhookSecretOut(BaseModel):
    id: int
    secret: str = Field(description="shown once; the old secret also signs until then")
    previous_secret_expires_at: datetime


class WebhookAttemptOut(BaseModel):
    attempted_at: datetime
    status_code: int | None = Field(description="the receiver's HTTP status, if it answered")
    error: str | None = Field(description="why there was no answer (timeout, refused, ...)")
    duration_ms: int


class WebhookMessageOut(BaseModel):
    id: int
    webhook_id: str = Field(description="the `webhook-id` header, the same on every attempt")
    type: str
    change_id: int | None
    status: DeliveryStatus
    next_attempt_at: datetime | None
    created_at: datetime
    payload: dict[str, Any]
    attempts: list[WebhookAttemptOut]


class WebhookMessagePage(BaseModel):
    items: list[WebhookMessageOut]
    next_cursor: str | None


class ReplayRequest(WebhookInput):
    since: Annotated[AwareDatetime, Field(strict=False, description="ISO time with a zone")]


class ReplayOut(BaseModel):
    messages: int = Field(description="messages queued again or created for this replay")


__all__ = [
    "DeliveryStatus",
    "ReplayOut",
    "ReplayRequest",
    "RotatedWebhookSecretOut",
    "WebhookAttemptOut",
    "WebhookEndpointCreate",
    "WebhookEndpointCreated",
    "WebhookEndpointList",
    "WebhookEndpointOut",
    "WebhookEndpointPatch",
    "WebhookMessageOut",
    "WebhookMessagePage",
]

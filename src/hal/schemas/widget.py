"""Widget routes: request and response bodies as strict Pydantic models.

Strict types: `false` is not an integer and `1` is not a string. The limits documented here are
the defaults; the domain checks enforce the configured ones.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictFloat, StrictInt, StrictStr
from pydantic.config import JsonDict

from hal.domain.crm import DealStatus, EventScope
from hal.domain.stages import StageMode

Id = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Name = Annotated[StrictStr, Field(min_length=1, max_length=255)]
Scalar = StrictStr | StrictInt | StrictFloat | StrictBool | None
# Configurable limits (counts, lengths of keys and values) are checked once, in the services
# (hal.domain.validation with the project's Limits); the schemas state only the shapes.
MetadataValue = Annotated[
    Scalar | list[Scalar],
    Field(
        description="string (<= 1,000 chars), number, boolean, null, or a list of <= 50 of those"
    ),
]
Metadata = Annotated[
    dict[str, MetadataValue],
    Field(description="Merged key by key; a null value deletes the key. <= 100 keys per call."),
]


class Input(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class CompanyInput(Input):
    id: Id
    name: Name | None = None
    stage: Name | None = None
    metadata: Metadata | None = None


RECOMMENDED_IDENTIFY: JsonDict = {
    "app_id": "demo",
    "visitor_id": "user_456",
    "user_id": "user_456",
    "email": "alice@acme.com",
    "name": "Alice",
    "metadata": {"plan": "enterprise", "role": "admin"},
    "company": {
        "id": "acme",
        "name": "Acme Inc",
        "stage": "Qualified",
        "metadata": {"arr_band": "50k-100k", "crm_owner": "Sam"},
    },
}


class IdentifyFields(Input):
    """What identify writes, whoever names the contact (a widget visitor or a team batch)."""

    user_id: Id | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None
    name: Name | None = None
    metadata: Metadata | None = None
    company: CompanyInput | None = Field(
        default=None, description="Upserted, linked and made active; null clears the active company"
    )
    company_ids: list[Id] | None = Field(default=None, description="<= 50 ids (configurable)")
    # Enums are given as their string values; strict mode would demand enum instances.
    stage_mode: Annotated[StageMode, Field(strict=False)] | None = None


class WidgetKeys(Input):
    app_id: Id
    visitor_id: Id


class IdentifyRequest(IdentifyFields, WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"app_id": "demo", "visitor_id": "v_1", "email": "alice@acme.com"},
                RECOMMENDED_IDENTIFY,
            ]
        }
    )

    user_hash: Annotated[StrictStr, Field(max_length=128)] | None = None
    identity_token: Annotated[StrictStr, Field(max_length=8192)] | None = None


class SetPropertiesFields(Input):
    properties: Metadata


class SetPropertiesRequest(SetPropertiesFields, WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"app_id": "demo", "visitor_id": "v_1", "properties": {"seats": 12, "beta": None}}
            ]
        }
    )


class ContactOut(BaseModel):
    id: int
    user_id: str | None
    email: str | None
    name: str | None
    metadata: dict[str, Any]
    verified: bool = Field(
        description="a proof signed this contact's user_id (or its email, when it has no user_id)"
    )
    email_verified: bool = Field(description="a proof signed this contact's email")


class CompanyOut(BaseModel):
    id: str
    name: str | None
    stage: str | None
    metadata: dict[str, Any] = Field(
        description="name, stage and metadata are withheld (null, {}) from unverified "
        "visitors when the company has verified contacts"
    )


class StageWriteOut(BaseModel):
    applied: bool
    previous: str | None
    stage: str | None = Field(description="the company's stage after the write")
    mode: StageMode
    reason: str | None = Field(
        description="why a write was skipped: unchanged, stage_already_set, "
        "not_forward or set_by_agent"
    )


class IdentifyResponse(BaseModel):
    visitor_id: str
    contact: ContactOut
    active_company: CompanyOut | None
    company_ids: list[str]
    session_token: str
    warnings: list[str] = Field(
        description="`email_in_use`; `attribute_type:KEY`, `attribute_archived:KEY`,"
        " `too_many_attributes:KEY` for metadata left out (`company.KEY` for the company's)"
    )
    stage: StageWriteOut | None = None


class SetPropertiesResponse(BaseModel):
    visitor_id: str
    contact: ContactOut | None = Field(description="the bound contact; null while anonymous")
    properties: dict[str, Any] = Field(
        description="what the visitor collected while anonymous (empty once identified)"
    )
    warnings: list[str] = Field(
        default_factory=list,
        description="properties left out, as `attribute_type:KEY`, `attribute_archived:KEY`"
        " or `too_many_attributes:KEY` (the rest is written)",
    )


class TrackFields(Input):
    event: Annotated[StrictStr, Field(min_length=1, max_length=128)]
    properties: Metadata | None = None
    company_id: Id | None = None
    scope: Annotated[EventScope, Field(strict=False)] | None = Field(
        default=None, description="Default: company when company_id is sent, else contact"
    )
    occurred_at: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        default=None, description="ISO 8601; the server time when absent"
    )
    sent_at: Annotated[StrictStr, Field(max_length=64)] | None = Field(
        default=None, description="The client's clock when it sent the call (skew correction)"
    )
    event_id: Id | None = Field(
        default=None, description="Idempotency key: a repeat stores nothing"
    )


class TrackRequest(TrackFields, WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "demo",
                    "visitor_id": "v_1",
                    "event": "plan-upgraded",
                    "properties": {"from": "pro", "to": "enterprise"},
                    "event_id": "evt_01HZX",
                }
            ]
        }
    )


class SetStageFields(Input):
    stage: Name
    company_id: Id | None = None
    stage_mode: Annotated[StageMode, Field(strict=False)] | None = None


class SetStageRequest(SetStageFields, WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"app_id": "demo", "visitor_id": "v_1", "stage": "Customer"}]
        }
    )


class DealInput(Input):
    id: Id
    name: Name | None = None
    amount: Annotated[float, Field(ge=0)] | None = None  # strict: integers pass, booleans not
    currency: Annotated[StrictStr, Field(min_length=3, max_length=3)] | None = Field(
        default=None, description="ISO 4217 code"
    )
    stage: Name | None = None
    status: Annotated[DealStatus, Field(strict=False)] | None = None
    close_date: Annotated[StrictStr, Field(max_length=32)] | None = Field(
        default=None, description="YYYY-MM-DD"
    )
    metadata: Metadata | None = None


class SetDealFields(Input):
    company_id: Id | None = None
    deal: DealInput


class SetDealRequest(SetDealFields, WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "app_id": "demo",
                    "visitor_id": "v_1",
                    "deal": {"id": "d1", "name": "Enterprise", "amount": 50000, "currency": "USD"},
                }
            ]
        }
    )


class EventOut(BaseModel):
    id: int
    name: str
    scope: EventScope
    properties: dict[str, Any]
    occurred_at: datetime
    received_at: datetime
    event_id: str | None
    contact_id: int | None
    company_id: str | None


class EventRef(BaseModel):
    id: int


class TrackResponse(BaseModel):
    event: EventOut | EventRef = Field(
        description="the stored event; for a repeat of the caller's event_id, its id only"
    )
    duplicate: bool


class SetStageResponse(BaseModel):
    company: CompanyOut
    stage: StageWriteOut


class DealOut(BaseModel):
    id: str
    name: str | None
    amount: float | None
    currency: str | None
    stage: str | None
    status: DealStatus
    close_date: str | None
    metadata: dict[str, Any]
    updated_at: datetime


class SetDealResponse(BaseModel):
    company: CompanyOut
    deal: DealOut
    created: bool
    changed: list[str] = Field(description="the fields this write changed")


class WidgetMessageRequest(WidgetKeys):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"app_id": "demo", "visitor_id": "v_1", "body": "Hi, I need help"}]
        }
    )

    body: Annotated[StrictStr, Field(min_length=1, max_length=10_000)]


class MessageOut(BaseModel):
    id: int
    author: Literal["visitor", "agent"]
    author_name: str | None
    body: str
    sender_verified: bool = Field(description="the visitor's identity was verified when sent")
    created_at: datetime


class ConversationOut(BaseModel):
    id: int
    status: Literal["open", "closed"]
    created_at: datetime
    last_message_at: datetime
    messages: list[MessageOut]


class WidgetMessageResponse(BaseModel):
    conversation: ConversationOut
    message: MessageOut


class WidgetMessagesResponse(BaseModel):
    conversation: ConversationOut | None = Field(
        description="the visitor's open conversation (or its latest one)"
    )
    conversations: list[ConversationOut] = Field(
        description="every conversation this visitor may read, newest first: the ones it "
        "started, or all of its contact's once verified"
    )


__all__ = [
    "RECOMMENDED_IDENTIFY",
    "CompanyInput",
    "CompanyOut",
    "ContactOut",
    "ConversationOut",
    "DealInput",
    "DealOut",
    "EventOut",
    "EventRef",
    "IdentifyFields",
    "IdentifyRequest",
    "IdentifyResponse",
    "MessageOut",
    "SetDealFields",
    "SetDealRequest",
    "SetDealResponse",
    "SetPropertiesFields",
    "SetPropertiesRequest",
    "SetPropertiesResponse",
    "SetStageFields",
    "SetStageRequest",
    "SetStageResponse",
    "StageWriteOut",
    "TrackFields",
    "TrackRequest",
    "TrackResponse",
    "WidgetKeys",
    "WidgetMessageRequest",
    "WidgetMessageResponse",
    "WidgetMessagesResponse",
]

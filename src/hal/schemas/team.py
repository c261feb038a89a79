"""Team API bodies: what the support team reads about contacts, companies and conversations."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from hal.domain.projects import CompanyClaims
from hal.domain.stages import StageMode
from hal.domain.verification import VerificationMode
from hal.schemas.widget import CompanyOut, ContactOut, DealOut, EventOut, MessageOut, Metadata


class ContactSummary(ContactOut):
    created_at: datetime
    last_seen_at: datetime


class ContactPage(BaseModel):
    items: list[ContactSummary]
    next_cursor: str | None
    total: int | None = Field(
        default=None, description="with a filter or a view: exact up to 10,000, then 10000"
    )
    total_exact: bool | None = None


class LinkedCompanyOut(CompanyOut):
    active: bool = Field(description="the active company of the contact's latest visitor")


class CompanyDealOut(DealOut):
    company_id: str


class PersonOut(BaseModel):
    id: int
    name: str | None
    email: str | None
    user_id: str | None
    verified: bool
    email_verified: bool


class CompanyBrief(BaseModel):
    id: str
    name: str | None
    stage: str | None


class ConversationSummaryOut(BaseModel):
    id: int
    status: Literal["open", "closed"]
    created_at: datetime
    last_message_at: datetime
    contact: PersonOut | None
    company: CompanyBrief | None
    last_message: MessageOut | None


class ContactDetailOut(BaseModel):
    contact: ContactSummary
    active_company: CompanyOut | None
    companies: list[LinkedCompanyOut]
    deals: list[CompanyDealOut]
    events: list[EventOut]
    conversations: list[ConversationSummaryOut]


class StageChangeOut(BaseModel):
    value: str
    previous: str | None
    source: str
    created_at: datetime


class CompanyDetailOut(BaseModel):
    company: CompanyOut
    stage_source: str | None
    stage_updated_at: datetime | None
    stage_history: list[StageChangeOut]
    contacts: list[PersonOut]
    contact_count: int
    deals: list[DealOut]
    events: list[EventOut]


class TeamInput(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")


class StagePatch(TeamInput):
    stage: Annotated[StrictStr, Field(min_length=1, max_length=255)]


class ContactPatch(TeamInput):
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    metadata: Metadata | None = Field(
        default=None, description="Merged key by key; null deletes; protected keys allowed"
    )


class ProjectOut(BaseModel):
    app_id: str
    name: str
    identity_verification: VerificationMode
    stage_mode: StageMode
    stages: list[str]
    allowed_origins: list[str]
    protected_keys: list[str]
    company_claims: CompanyClaims
    event_retention_days: int | None = None
    conversation_retention_days: int | None = None
    created_at: datetime


class ProjectPatch(TeamInput):
    name: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    identity_verification: Annotated[VerificationMode, Field(strict=False)] | None = None
    stage_mode: Annotated[StageMode, Field(strict=False)] | None = None
    stages: (
        Annotated[
            list[Annotated[StrictStr, Field(min_length=1, max_length=255)]], Field(max_length=50)
        ]
        | None
    ) = None
    allowed_origins: (
        Annotated[list[Annotated[StrictStr, Field(max_length=255)]], Field(max_length=50)] | None
    ) = None
    protected_keys: (
        Annotated[
            list[Annotated[StrictStr, Field(min_length=1, max_length=64)]], Field(max_length=100)
        ]
        | None
    ) = None
    company_claims: Annotated[CompanyClaims, Field(strict=False)] | None = None
    event_retention_days: Annotated[int, Field(ge=0, le=36_500)] | None = Field(
        default=None, description="Tracked events older than this are purged; 0 unsets"
    )
    conversation_retention_days: Annotated[int, Field(ge=0, le=36_500)] | None = Field(
        default=None, description="Closed conversations quiet for this long are purged; 0 unsets"
    )


class RotateSecretRequest(TeamInput):
    grace_seconds: Annotated[StrictInt, Field(ge=0, le=30 * 86400)] = 86400
    revoke_sessions: StrictBool = Field(
        default=False, description="also end every widget session token of the project at once"
    )


class RotatedSecretOut(BaseModel):
    app_id: str
    identity_secret: str = Field(description="shown once; the old secret verifies until then")
    previous_secret_expires_at: datetime


class StagePatchOut(BaseModel):
    company: CompanyOut
    applied: bool
    previous: str | None


class ConversationPage(BaseModel):
    items: list[ConversationSummaryOut]
    next_cursor: str | None
    total: int | None = Field(
        default=None, description="with a filter or a view: exact up to 10,000, then 10000"
    )
    total_exact: bool | None = None


class ThreadOut(BaseModel):
    conversation: ConversationSummaryOut
    messages: list[MessageOut]


class ReplyRequest(TeamInput):
    body: Annotated[StrictStr, Field(min_length=1, max_length=10_000)]


class StreamTicketOut(BaseModel):
    ticket: str = Field(
        description="opens GET /stream?ticket= once; shown once, only its hash is kept"
    )
    expires_at: datetime = Field(description="after this it opens nothing")
    expires_in: int = Field(description="seconds from now until `expires_at`")


class EventPage(BaseModel):
    items: list[EventOut]
    next_cursor: str | None


__all__ = [
    "CompanyBrief",
    "CompanyDealOut",
    "CompanyDetailOut",
    "CompanyPage",
    "CompanySummary",
    "ContactDetailOut",
    "ContactPage",
    "ContactPatch",
    "ContactSearchPage",
    "ContactSummary",
    "ConversationPage",
    "ConversationSearchPage",
    "ConversationSummaryOut",
    "EventPage",
    "LinkedCompanyOut",
    "PersonOut",
    "ProjectOut",
    "ProjectPatch",
    "ReplyRequest",
    "RotateSecretRequest",
    "RotatedSecretOut",
    "SearchRequest",
    "StageChangeOut",
    "StagePatch",
    "StagePatchOut",
    "StreamTicketOut",
    "ThreadOut",
]


class SearchRequest(TeamInput):
    """A search (README "Search"): `query` a condition or a group, `sort` `{"field",
    "order"}`, a page of `limit` records after `cursor`."""

    query: dict[str, Any] | None = Field(default=None, description="a condition or a group")
    sort: dict[str, Any] | None = Field(
        default=None, description='{"field": ..., "order": "asc" | "desc"}'
    )
    limit: Annotated[StrictInt, Field(ge=1, le=200)] = 50
    cursor: Annotated[StrictStr, Field(max_length=1000)] | None = None


class SearchTotal(BaseModel):
    next_cursor: str | None
    total: int = Field(description="exact up to 10,000 matches, then 10000")
    total_exact: bool


class ContactSearchPage(SearchTotal):
    items: list[ContactSummary]


class CompanySummary(CompanyOut):
    created_at: datetime
    contact_count: int


class CompanyPage(SearchTotal):
    items: list[CompanySummary]


class ConversationSearchPage(SearchTotal):
    items: list[ConversationSummaryOut]

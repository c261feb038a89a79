"""Bodies of the privacy routes: erase, export, merge, suppressions, audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from hal.schemas.team import ContactSummary
from hal.schemas.widget import CompanyOut, ConversationOut, EventOut

MAX_ID = 2**63 - 1


class SuppressionOut(BaseModel):
    user_id_hash: str | None = Field(description="DELETE /suppressions/{hash} lifts it")
    email_hash: str | None


class ErasedOut(BaseModel):
    id: int
    erased: bool
    deleted_rows: int
    suppression: SuppressionOut | None


class SuppressionLiftedOut(BaseModel):
    lifted: bool


class SuppressedPersonOut(BaseModel):
    """An erased person who may not be recorded again: keyed hashes only, never the values."""

    id: int
    user_id_hash: str | None = Field(description="DELETE /suppressions/{hash} lifts it")
    email_hash: str | None
    merged_email_hashes: list[str] = Field(
        description="emails of contacts merged into the person, suppressed with them"
    )
    created_at: datetime


class SuppressionPage(BaseModel):
    items: list[SuppressedPersonOut]
    next_cursor: str | None


class ErasureRequest(BaseModel):
    """The person to erase, by exactly one of their keys."""

    model_config = ConfigDict(strict=True, extra="forbid")

    email: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    user_id: Annotated[StrictStr, Field(min_length=1, max_length=255)] | None = None
    suppress: StrictBool = Field(
        default=False, description="refuse their user_id and email from now on (403 suppressed)"
    )


class VisitorExport(BaseModel):
    visitor_id: str
    properties: dict[str, Any]
    active_company_id: str | None
    verified: bool
    created_at: datetime
    last_seen_at: datetime


class ContactExport(BaseModel):
    """Everything HAL holds about one person."""

    exported_at: datetime
    contact: ContactSummary
    visitors: list[VisitorExport]
    companies: list[CompanyOut]
    events: list[EventOut]
    conversations: list[ConversationOut]


class MergeRequest(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", populate_by_name=True)

    from_: StrictInt = Field(alias="from", ge=1, le=MAX_ID, description="the contact that goes")
    into: StrictInt = Field(ge=1, le=MAX_ID, description="the contact that stays")
    preview: StrictBool = Field(default=False, description="answer what would move; write nothing")
    confirm_verified_pair: StrictBool = Field(
        default=False,
        description="merge even though both contacts are verified, each by its own proof"
        " (otherwise 409 verified_pair)",
    )


class MergeMoves(BaseModel):
    visitors: int
    events: int
    conversations: int
    companies: int


class MergeOut(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: int = Field(alias="from")
    into: int
    preview: bool
    contact: ContactSummary = Field(description="`into` as it is (or would be) after the merge")
    changed: list[str] = Field(description="fields of `into` the merge fills from `from`")
    moves: MergeMoves
    verified_pair: bool = Field(
        description="both contacts are verified by their own proofs: the merge needs"
        " `confirm_verified_pair`"
    )


class AuditActor(BaseModel):
    type: str = Field(description="agent, token or cli")
    id: int | None


class AuditEntryOut(BaseModel):
    id: int
    actor: AuditActor
    action: str
    target: str | None
    changes: dict[str, Any]
    created_at: datetime


class AuditPage(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None

"""Batch writes and imports (README "Batch writes and imports"): request items and answers.

A batch item carries the fields of the widget route of its `type`, the contact named by
`user_id` or `email` instead of `visitor_id`; the field sets are the widget's own classes.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictStr

from hal.schemas.widget import (
    Id,
    IdentifyFields,
    Input,
    SetDealFields,
    SetPropertiesFields,
    SetStageFields,
    TrackFields,
)

MAX_BATCH_ITEMS = 1000


class ContactKey(Input):
    """The contact an item writes to: its user_id, else its email (it must exist)."""

    user_id: Id | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None


class IdentifyItem(IdentifyFields):
    type: Literal["identify"]


class SetPropertiesItem(SetPropertiesFields, ContactKey):
    type: Literal["set_properties"]


class TrackItem(TrackFields, ContactKey):
    type: Literal["track"]


class SetStageItem(SetStageFields, ContactKey):
    type: Literal["set_stage"]


class SetDealItem(SetDealFields, ContactKey):
    type: Literal["set_deal"]


BatchItem = Annotated[
    IdentifyItem | SetPropertiesItem | TrackItem | SetStageItem | SetDealItem,
    Field(discriminator="type"),
]
ITEM_TYPES = ("identify", "set_properties", "track", "set_stage", "set_deal")


class BatchRequest(BaseModel):
    items: Annotated[list[Any], Field(max_length=MAX_BATCH_ITEMS)] = Field(
        description='Up to 1,000 items, each `{"type": "identify" | "set_properties" | '
        '"track" | "set_stage" | "set_deal", ...}` with the fields of that widget route '
        "and `user_id` or `email` instead of `visitor_id`. Each is read and committed on its own."
    )


class ItemError(BaseModel):
    code: str
    message: str
    field: str | None = Field(description="the item's field at fault, as `items[3].user_id`")


class ItemResult(BaseModel):
    index: int
    status: Literal["ok", "error"]
    contact_id: int | None = None
    duplicate: bool | None = Field(
        default=None, description="track only: the contact's event_id was seen before"
    )
    warnings: list[str] | None = None
    error: ItemError | None = None


class BatchResponse(BaseModel):
    results: list[ItemResult] = Field(description="one per item, in item order")
    ok: int
    failed: int


class ImportFailure(BaseModel):
    line: int = Field(description="the line of the file where the row starts (the header is 1)")
    code: str
    error: str
    field: str | None
    row: dict[str, str] = Field(description="the row as read, column by column")


class ImportJobError(BaseModel):
    code: str
    message: str
    field: str | None


class ImportJobOut(BaseModel):
    """An import job: where it is, what its rows did so far, and every failed row once it
    has ended."""

    id: int
    kind: Literal["contacts", "companies"]
    status: Literal["queued", "running", "done", "failed"] = Field(
        description="queued, running, then done; failed when it could not go on (`error`)"
    )
    dry_run: bool
    rows_total: int | None = Field(description="the file's rows (blank lines left out)")
    rows_done: int = Field(description="rows written (or checked, in a dry run) so far")
    created: int
    updated: int
    unchanged: int
    failed: int
    failures: list[ImportFailure] | None = Field(
        description="every failed row, by line, once the job has ended; null before"
    )
    error: ImportJobError | None = Field(description="why a failed job stopped")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


__all__ = [
    "ITEM_TYPES",
    "MAX_BATCH_ITEMS",
    "BatchItem",
    "BatchRequest",
    "BatchResponse",
    "ContactKey",
    "IdentifyItem",
    "ImportFailure",
    "ImportJobError",
    "ImportJobOut",
    "ItemError",
    "ItemResult",
    "SetDealItem",
    "SetPropertiesItem",
    "SetStageItem",
    "TrackItem",
]

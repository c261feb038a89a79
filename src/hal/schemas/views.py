"""Saved views as the API shows and takes them (README "Saved views")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints

from hal.domain.search import Kind

Name = Annotated[StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=255)]
# The search language is read by the service (422 invalid_query naming the path in the body).
Query = Annotated[
    dict[str, Any] | None,
    Field(description="a search query: a condition or a group (null: every record)"),
]
Sort = Annotated[
    dict[str, Any] | None,
    Field(description='{"field": ..., "order": "asc" | "desc"} (null: the list\'s own order)'),
]


class ViewOut(BaseModel):
    id: int
    name: str
    model: Kind
    query: dict[str, Any] | None
    sort: dict[str, Any] | None
    count: int | None = Field(
        description="the records the view finds now: exact up to 10,000, then 10000; null "
        "when the query no longer fits the project's fields (see `problem`)"
    )
    count_exact: bool
    problem: str | None = Field(
        description="why the query no longer reads (a list option it names was removed)"
    )
    created_at: datetime
    updated_at: datetime


class ViewList(BaseModel):
    items: list[ViewOut]


class ViewCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name
    model: Annotated[Kind, Field(strict=False)]
    query: Query = None
    sort: Sort = None


class ViewPatch(BaseModel):
    """Any of the three; `query` or `sort` null clears it."""

    model_config = ConfigDict(strict=True, extra="forbid")

    name: Name = Field(default=None)  # type: ignore[assignment]  # absent or a name, never null
    query: Query = None
    sort: Sort = None

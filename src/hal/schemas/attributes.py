"""Attribute definitions as the API shows and takes them (README "Attributes")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr

from hal.domain.attributes import MAX_DESCRIPTION, MAX_LABEL, MAX_OPTIONS, AttrType, Model, Source

Label = Annotated[StrictStr, Field(max_length=MAX_LABEL)]
Description = Annotated[StrictStr, Field(max_length=MAX_DESCRIPTION)]
Options = Annotated[
    list[Annotated[StrictStr, Field(min_length=1, max_length=MAX_LABEL)]],
    Field(max_length=MAX_OPTIONS),
]


class AttributeOut(BaseModel):
    model: Model
    key: str
    type: AttrType
    label: str | None
    description: str | None
    options: list[str] | None = Field(description="a list attribute's options")
    source: Source
    archived: bool
    protected: bool = Field(description="only signed claims or the team API may write it")
    nonconforming: int = Field(description="stored values not of this type (match only exists)")
    created_at: datetime | None = Field(description="null for a built-in field")


class AttributeList(BaseModel):
    items: list[AttributeOut]


class AttributeCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    model: Annotated[Model, Field(strict=False)]
    key: Annotated[StrictStr, Field(min_length=1, max_length=64)]
    type: Annotated[AttrType, Field(strict=False)]
    label: Label | None = None
    description: Description | None = None
    options: Options | None = None


class AttributePatch(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    label: Label | None = None
    description: Description | None = None
    options: Options | None = None
    archived: StrictBool = Field(default=None)  # type: ignore[assignment]  # absent, never null

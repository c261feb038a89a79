"""Bodies of the admin API's API tokens and user_hash check (README "Projects and tokens",
"Identity verification")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from hal.domain.projects import MAX_TOKEN_LABEL, TokenKind


class TokenOut(BaseModel):
    """An API token as the admin sees it: never the token, nor its hash."""

    id: int
    label: str | None
    kind: TokenKind = Field(description="team: the team API; admin: the admin API too")
    prefix: str = Field(description="the token's first characters, to tell tokens apart")
    created_at: datetime
    last_used_at: datetime | None = Field(description="to the minute: noted once a minute")
    revoked_at: datetime | None


class TokenList(BaseModel):
    items: list[TokenOut]


class TokenCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    label: Annotated[StrictStr, Field(max_length=MAX_TOKEN_LABEL)] | None = None
    kind: Annotated[TokenKind, Field(strict=False)] = TokenKind.TEAM


class TokenCreated(TokenOut):
    token: str = Field(description="shown once; only its hash is kept")


class CheckHashRequest(BaseModel):
    """Exactly one of `user_id` and `email`: the value the widget signs."""

    model_config = ConfigDict(strict=True, extra="forbid")

    user_id: Annotated[StrictStr, Field(max_length=255)] | None = None
    email: Annotated[StrictStr, Field(max_length=255)] | None = None
    user_hash: Annotated[StrictStr, Field(min_length=1, max_length=128)]


class CheckHashOut(BaseModel):
    valid: bool
    signed: Literal["user_id", "email"] = Field(description="the value the hash was checked on")
    secret: Literal["current", "previous"] | None = Field(
        description="which identity secret it matches (previous: during a rotation's grace)"
    )

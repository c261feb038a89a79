"""The installation check and the refusals log as the admin API shows them (README
"Installation check and refusals")."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class IdentifyCounts(BaseModel):
    total: int
    verified: int = Field(description="with a valid user_hash or identity_token")
    unsigned: int = Field(description="with no proof")
    failed: dict[str, int] = Field(description="refused, by code (hash_mismatch, ...)")


class OriginOut(BaseModel):
    origin: str | None = Field(description="null for calls with no Origin header")
    calls: int = Field(description="every widget call, refused ones included")
    identify: IdentifyCounts
    first_seen_at: datetime
    last_seen_at: datetime


class EnforcementImpact(BaseModel):
    users: int = Field(description="distinct identified users seen in the window")
    never_verified: int = Field(description="of them, those that never presented a valid proof")
    summary: str


class InstallationOut(BaseModel):
    days: int
    origins: list[OriginOut]
    enforcement_impact: EnforcementImpact
    flush_seconds: float = Field(description="each process adds its counts this often")


class RefusalOut(BaseModel):
    id: int
    created_at: datetime
    route: str
    status: int
    code: str
    field: str | None
    message: str
    origin: str | None
    visitor_id: str | None


class RefusalPage(BaseModel):
    items: list[RefusalOut]
    next_cursor: str | None

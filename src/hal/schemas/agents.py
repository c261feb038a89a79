"""Agents as the admin API shows and takes them (README "Agents and roles")."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from hal.domain.roles import Role

Password = Annotated[StrictStr, Field(min_length=1, max_length=1024)]
AgentName = Annotated[StrictStr, Field(max_length=255)]


class AgentOut(BaseModel):
    id: int
    email: str
    name: str | None
    role: Role
    created_at: datetime


class AgentList(BaseModel):
    items: list[AgentOut]


class AgentCreate(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid")

    email: Annotated[StrictStr, Field(min_length=1, max_length=255)]
    password: Password = Field(description="at least 8 characters")
    name: AgentName | None = None
    role: Annotated[
        Role | None, Field(strict=False, description="default: admin for a first agent, else agent")
    ] = None


class AgentPatch(BaseModel):
    """The keys given change; a new password ends the agent's sessions."""

    model_config = ConfigDict(strict=True, extra="forbid")

    role: Annotated[Role | None, Field(strict=False)] = None
    name: AgentName | None = None
    password: Password | None = None

"""Inbox logins: agents of a project, with argon2-hashed passwords."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Agent, InstanceSecret, Project
from hal.db.queries import insert_ignoring_conflict
from hal.domain.errors import Conflict, InvalidInput
from hal.domain.limits import Limits
from hal.domain.validation import parse_email
from hal.services.projects import get_project, new_secret

_hasher = PasswordHasher()
MIN_PASSWORD = 8


async def create_agent(
    *, session: AsyncSession, app_id: str, email: str, password: str, name: str | None = None
) -> Agent:
    """Add an inbox login to a project."""
    project = await get_project(session=session, app_id=app_id)
    address = parse_email(email, limits=Limits()).normalized
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            "weak_password",
            f"the password needs at least {MIN_PASSWORD} characters",
            field="password",
        )
    existing = await session.execute(
        select(Agent).where(Agent.project_id == project.id, Agent.email == address)
    )
    if existing.scalar_one_or_none() is not None:
        raise Conflict("agent_exists", f"{address} is already an agent of {app_id}", field="email")
    agent = Agent(
        project_id=project.id, email=address, name=name, password_hash=_hasher.hash(password)
    )
    session.add(agent)
    await session.flush()
    return agent


async def authenticate(
    *, session: AsyncSession, email: str, password: str, app_id: str | None
) -> tuple[Agent, Project] | None:
    """The agent with this email and password (in `app_id` when the email is in several)."""
    query = (
        select(Agent, Project)
        .join(Project, Project.id == Agent.project_id)
        .where(Agent.email == email.strip().lower())
    )
    if app_id:
        query = query.where(Project.app_id == app_id.strip())
    matches = []
    for agent, project in await session.execute(query):
        try:
            _hasher.verify(agent.password_hash, password)
        except (VerifyMismatchError, InvalidHashError):
            continue
        matches.append((agent, project))
    return matches[0] if len(matches) == 1 else None


async def agent_by_id(session: AsyncSession, agent_id: int) -> tuple[Agent, Project] | None:
    row = (
        await session.execute(
            select(Agent, Project)
            .join(Project, Project.id == Agent.project_id)
            .where(Agent.id == agent_id)
        )
    ).first()
    return (row[0], row[1]) if row else None


async def instance_secret(session: AsyncSession, name: str) -> str:
    """A secret of this installation, created on first use and shared by every process."""
    await insert_ignoring_conflict(
        session, InstanceSecret, [{"name": name, "value": new_secret()}], ["name"]
    )
    return (
        await session.execute(select(InstanceSecret.value).where(InstanceSecret.name == name))
    ).scalar_one()

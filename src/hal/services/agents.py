"""Inbox logins: agents of a project, with argon2-hashed passwords, and their sessions,
kept on the server so that logging out, removing an agent or a new password ends them. Every
login, failed or successful, is an audit entry of the project it was for."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerifyMismatchError
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Agent, Project
from hal.db.models import AgentSession as SessionRow
from hal.db.queries import locked, project_by_app_id
from hal.db.types import utcnow
from hal.domain.errors import Conflict, InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.validation import parse_email
from hal.services.audit import CLI, SECRET, Actor, record_audit
from hal.services.projects import get_project

_hasher = PasswordHasher()
MIN_PASSWORD = 8
LOGIN = "agent.login"
LOGIN_FAILED = "agent.login_failed"


@cache
def _dummy_hash() -> str:
    """A hash no agent has, verified when no agent matches so a refusal costs the same."""
    return _hasher.hash(secrets.token_urlsafe(24))


def _password_matches(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, InvalidHashError):
        return False


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise InvalidInput(
            "weak_password",
            f"the password needs at least {MIN_PASSWORD} characters",
            field="password",
        )


async def create_agent(
    *, session: AsyncSession, app_id: str, email: str, password: str, name: str | None = None
) -> Agent:
    """Add an inbox login to a project."""
    project = await get_project(session=session, app_id=app_id)
    address = parse_email(email, limits=Limits()).normalized
    _check_password(password)
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
    await record_audit(
        session,
        project_id=project.id,
        actor=CLI,
        action="agent.created",
        target=str(agent.id),
        changes={"email": address, "password": SECRET},
    )
    return agent


async def login_candidates(
    *, session: AsyncSession, email: str, app_id: str | None
) -> list[tuple[Agent, Project]]:
    """The agents with this email (in `app_id` when given), for `authenticate`."""
    query = (
        select(Agent, Project)
        .join(Project, Project.id == Agent.project_id)
        .where(Agent.email == email.strip().lower())
    )
    if app_id:
        query = query.where(Project.app_id == app_id.strip())
    return [(agent, project) for agent, project in await session.execute(query)]


async def authenticate(
    candidates: list[tuple[Agent, Project]], password: str
) -> tuple[Agent, Project] | None:
    """The one candidate whose password this is. Argon2 runs in a worker thread, outside any
    transaction (it takes ~100 ms: no connection or event loop waits for it)."""
    if not candidates:
        # An unknown email runs the same argon2 verification as a wrong password, so the
        # time of the answer does not tell which emails are agents.
        await asyncio.to_thread(_password_matches, _dummy_hash(), password)
        return None
    matches = [
        (agent, project)
        for agent, project in candidates
        if await asyncio.to_thread(_password_matches, agent.password_hash, password)
    ]
    return matches[0] if len(matches) == 1 else None


def _login_name(email: str) -> str:
    """The email a login was tried with, as an audit entry's target (never the password)."""
    return email.strip().lower()[:255]


async def record_failed_login(
    *,
    session: AsyncSession,
    email: str,
    app_id: str | None,
    candidates: list[tuple[Agent, Project]],
) -> None:
    """Audit a refused login: in the project of each agent the email named (with that agent
    as the actor), or, for an email no agent has, in the named workspace's project (with no
    agent id). An unknown email with no workspace names no project, so no audit log gets it."""
    target = _login_name(email)
    if candidates:
        for agent, project in candidates:
            await record_audit(
                session,
                project_id=project.id,
                actor=Actor("agent", agent.id),
                action=LOGIN_FAILED,
                target=target,
            )
        return
    workspace = await project_by_app_id(session, app_id.strip()) if app_id else None
    if workspace is not None:
        await record_audit(
            session,
            project_id=workspace.id,
            actor=Actor("agent"),
            action=LOGIN_FAILED,
            target=target,
        )


async def _agent(*, session: AsyncSession, app_id: str, email: str) -> Agent:
    project = await get_project(session=session, app_id=app_id)
    address = email.strip().lower()
    agent = (
        await session.execute(
            select(Agent).where(Agent.project_id == project.id, Agent.email == address)
        )
    ).scalar_one_or_none()
    if agent is None:
        raise NotFound("unknown_agent", f"{address} is not an agent of {app_id}", field="email")
    return agent


async def remove_agent(*, session: AsyncSession, app_id: str, email: str) -> Agent:
    """Delete an inbox login; its sessions end with it."""
    agent = await _agent(session=session, app_id=app_id, email=email)
    await session.execute(delete(SessionRow).where(SessionRow.agent_id == agent.id))
    await session.execute(delete(Agent).where(Agent.id == agent.id))
    await record_audit(
        session,
        project_id=agent.project_id,
        actor=CLI,
        action="agent.removed",
        target=str(agent.id),
        changes={"email": agent.email},
    )
    return agent


async def set_password(*, session: AsyncSession, app_id: str, email: str, password: str) -> Agent:
    """Give an agent a new password and end every session it has."""
    _check_password(password)
    agent = await _agent(session=session, app_id=app_id, email=email)
    agent.password_hash = _hasher.hash(password)
    await session.execute(delete(SessionRow).where(SessionRow.agent_id == agent.id))
    await session.flush()
    await record_audit(
        session,
        project_id=agent.project_id,
        actor=CLI,
        action="agent.password_set",
        target=str(agent.id),
        changes={"password": SECRET},
    )
    return agent


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    """An agent's live session: the row, its agent and project."""

    id: int
    agent: Agent
    project: Project
    csrf_token: str


async def start_session(*, session: AsyncSession, agent: Agent, ttl: timedelta) -> str | None:
    """A new session's token (only its hash is stored), audited as the agent's login; None if
    the agent changed meanwhile."""
    # The row lock orders this after a concurrent set_password or remove_agent, whose
    # deletion of sessions would otherwise miss the one being added.
    unchanged = await session.execute(
        locked(
            select(Agent.id).where(Agent.id == agent.id, Agent.password_hash == agent.password_hash)
        )
    )
    if unchanged.scalar_one_or_none() is None:
        return None
    now = utcnow()
    await session.execute(
        delete(SessionRow).where(SessionRow.agent_id == agent.id, SessionRow.expires_at <= now)
    )
    token = secrets.token_urlsafe(32)
    session.add(
        SessionRow(
            token_hash=_token_hash(token),
            agent_id=agent.id,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            expires_at=now + ttl,
        )
    )
    await session.flush()
    await record_audit(
        session,
        project_id=agent.project_id,
        actor=Actor("agent", agent.id),
        action=LOGIN,
        target=_login_name(agent.email),
        now=now,
    )
    return token


async def session_for_token(*, session: AsyncSession, token: str) -> SignedIn | None:
    """The unexpired session with this token, or None."""
    row = (
        await session.execute(
            select(SessionRow, Agent, Project)
            .join(Agent, Agent.id == SessionRow.agent_id)
            .join(Project, Project.id == Agent.project_id)
            .where(SessionRow.token_hash == _token_hash(token), SessionRow.expires_at > utcnow())
        )
    ).first()
    if row is None:
        return None
    found, agent, project = row
    return SignedIn(id=found.id, agent=agent, project=project, csrf_token=found.csrf_token)


async def end_session(*, session: AsyncSession, session_id: int) -> None:
    """Delete one session (logout)."""
    await session.execute(delete(SessionRow).where(SessionRow.id == session_id))

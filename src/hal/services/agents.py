"""Inbox logins: agents of a project, with argon2-hashed passwords, and their sessions,
kept on the server so that logging out, removing an agent or a new password ends them. Every
login, failed or successful, is an audit entry of the project it was for."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

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
from hal.domain.roles import Role, check_an_admin_stays, first_role
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


async def _roster(session: AsyncSession, project_id: int) -> tuple[int, int]:
    """The project's admins and agents, counted under a lock of the project's row so that two
    concurrent changes of roles cannot both take the last admin away."""
    await session.execute(locked(select(Project.id).where(Project.id == project_id)))
    roles = list((await session.execute(
        select(Agent.role).where(Agent.project_id == project_id)
    )).scalars())  # fmt: skip
    return roles.count(Role.ADMIN), len(roles)


async def create_agent(
    *,
    session: AsyncSession,
    app_id: str,
    email: str,
    password: str,
    name: str | None = None,
    role: Role | None = None,
    actor: Actor = CLI,
) -> Agent:
    """Add an inbox login to a project; without a role, a project's first agent is its
    admin and later ones are agents."""
    project = await get_project(session=session, app_id=app_id)
    address = parse_email(email, limits=Limits()).normalized
    _check_password(password)
    admins, _ = await _roster(session, project.id)
    existing = await session.execute(
        select(Agent).where(Agent.project_id == project.id, Agent.email == address)
    )
    if existing.scalar_one_or_none() is not None:
        raise Conflict("agent_exists", f"{address} is already an agent of {app_id}", field="email")
    agent = Agent(
        project_id=project.id,
        email=address,
        name=name,
        password_hash=_hasher.hash(password),
        role=role or first_role(admins),
    )
    session.add(agent)
    await session.flush()
    await record_audit(
        session,
        project_id=project.id,
        actor=actor,
        action="agent.created",
        target=str(agent.id),
        changes={"email": address, "role": agent.role, "password": SECRET},
    )
    return agent


async def list_agents(*, session: AsyncSession, app_id: str) -> list[Agent]:
    project = await get_project(session=session, app_id=app_id)
    found = await session.execute(
        select(Agent).where(Agent.project_id == project.id).order_by(Agent.id)
    )
    return list(found.scalars())


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


async def _agent(
    *, session: AsyncSession, app_id: str, email: str | None = None, agent_id: int | None = None
) -> Agent:
    """The project's agent with this email or id (404 `unknown_agent`)."""
    project = await get_project(session=session, app_id=app_id)
    query = select(Agent).where(Agent.project_id == project.id)
    if agent_id is not None:
        query, named, field = query.where(Agent.id == agent_id), str(agent_id), "agent_id"
    else:
        named, field = (email or "").strip().lower(), "email"
        query = query.where(Agent.email == named)
    agent = (await session.execute(query)).scalar_one_or_none()
    if agent is None:
        raise NotFound("unknown_agent", f"{named} is not an agent of {app_id}", field=field)
    return agent


async def remove_agent(
    *,
    session: AsyncSession,
    app_id: str,
    email: str | None = None,
    agent_id: int | None = None,
    actor: Actor = CLI,
) -> Agent:
    """Delete an inbox login; its sessions end with it. The last admin stays (409)."""
    agent = await _agent(session=session, app_id=app_id, email=email, agent_id=agent_id)
    admins, agents = await _roster(session, agent.project_id)
    check_an_admin_stays(admins_after=admins - (agent.role == Role.ADMIN), agents_after=agents - 1)
    await session.execute(delete(SessionRow).where(SessionRow.agent_id == agent.id))
    await session.execute(delete(Agent).where(Agent.id == agent.id))
    await record_audit(
        session,
        project_id=agent.project_id,
        actor=actor,
        action="agent.removed",
        target=str(agent.id),
        changes={"email": agent.email},
    )
    return agent


async def update_agent(
    *,
    session: AsyncSession,
    app_id: str,
    changes: Mapping[str, Any],
    email: str | None = None,
    agent_id: int | None = None,
    actor: Actor = CLI,
) -> Agent:
    """Change an agent's `role`, `name` or `password` (the keys given). A new password ends
    every session the agent has; the last admin stays an admin (409 `last_admin`)."""
    if "password" in changes:
        _check_password(changes["password"])
    agent = await _agent(session=session, app_id=app_id, email=email, agent_id=agent_id)
    audited: dict[str, Any] = {}
    if "role" in changes and changes["role"] != agent.role:
        admins, agents = await _roster(session, agent.project_id)
        demoted = agent.role == Role.ADMIN
        check_an_admin_stays(admins_after=admins - demoted, agents_after=agents)
        audited["role"] = {"from": agent.role, "to": str(changes["role"])}
        agent.role = Role(changes["role"])
    if "name" in changes and changes["name"] != agent.name:
        audited["name"] = {"from": agent.name, "to": changes["name"]}
        agent.name = changes["name"]
    if "password" in changes:
        agent.password_hash = _hasher.hash(changes["password"])
        await session.execute(delete(SessionRow).where(SessionRow.agent_id == agent.id))
        audited["password"] = SECRET
    await session.flush()
    if audited:
        action = "agent.password_set" if list(audited) == ["password"] else "agent.updated"
        await record_audit(session, project_id=agent.project_id, actor=actor, action=action,
                           target=str(agent.id), changes=audited)  # fmt: skip
    return agent


async def set_password(*, session: AsyncSession, app_id: str, email: str, password: str) -> Agent:
    """Give an agent a new password and end every session it has."""
    return await update_agent(
        session=session, app_id=app_id, email=email, changes={"password": password}
    )


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

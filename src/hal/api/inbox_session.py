"""The inbox's login session: a signed, expiring, HttpOnly cookie and a CSRF token per session."""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass

from fastapi import Request, Response
from itsdangerous import BadSignature, URLSafeTimedSerializer

from hal.db.engine import Database
from hal.db.models import Agent, Project
from hal.services.agents import agent_by_id, instance_secret

COOKIE = "hal_inbox"
MAX_AGE = 12 * 3600


@dataclass(frozen=True)
class AgentSession:
    agent: Agent
    project: Project
    csrf_token: str


class LoginRequired(Exception):
    """Raised by `current_agent`; answered with a redirect to the login page."""


async def _serializer(request: Request) -> URLSafeTimedSerializer:
    state = request.app.state
    if getattr(state, "inbox_serializer", None) is None:
        database: Database = state.database
        key = await database.transaction(lambda s: instance_secret(s, "inbox_cookie_key"))
        state.inbox_serializer = URLSafeTimedSerializer(key, salt="hal-inbox")
    serializer: URLSafeTimedSerializer = state.inbox_serializer
    return serializer


async def start_session(request: Request, response: Response, agent: Agent) -> None:
    serializer = await _serializer(request)
    value = serializer.dumps({"agent": agent.id, "csrf": secrets.token_urlsafe(24)})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
        path="/inbox",
    )


def end_session(response: Response) -> None:
    response.delete_cookie(COOKIE, path="/inbox")


async def current_agent(request: Request) -> AgentSession:
    raw = request.cookies.get(COOKIE)
    if not raw:
        raise LoginRequired
    serializer = await _serializer(request)
    try:
        data = serializer.loads(raw, max_age=MAX_AGE)
    except BadSignature:
        raise LoginRequired from None
    database: Database = request.app.state.database
    found = await database.transaction(lambda s: agent_by_id(s, int(data["agent"])))
    if found is None:
        raise LoginRequired
    return AgentSession(agent=found[0], project=found[1], csrf_token=str(data["csrf"]))


def csrf_ok(session: AgentSession, submitted: str | None) -> bool:
    return submitted is not None and hmac.compare_digest(session.csrf_token, submitted)

"""The login session of the inbox and the admin console: an HttpOnly cookie holding a random
token whose session lives on the server (logging out, removing the agent or a new password
ends it at once), with a CSRF token per session; and the login itself, throttled and
audited."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import timedelta

from fastapi import Request, Response

from hal.db.engine import Database
from hal.db.models import Agent
from hal.services import agents
from hal.services.agents import SignedIn
from hal.services.login_throttle import LoginThrottle

COOKIE = "hal_inbox"
ADMIN_COOKIE = "hal_admin"
# The session's cookies, by the part of the site each one reaches: the inbox and the admin
# console (the same session under two names), nothing else.
COOKIE_PATHS = {"/inbox": COOKIE, "/admin": ADMIN_COOKIE}
MAX_AGE = 12 * 3600
MAX_TOKEN_LENGTH = 128


class LoginRequired(Exception):
    """Raised by `current_agent`; answered with a redirect to the login page."""


async def start_session(request: Request, response: Response, agent: Agent) -> bool:
    """Set the cookie of a new session; False when the agent changed since its login check."""
    database: Database = request.app.state.database
    token = await database.transaction(
        lambda s: agents.start_session(session=s, agent=agent, ttl=timedelta(seconds=MAX_AGE))
    )
    if token is None:
        return False
    for path, name in COOKIE_PATHS.items():
        response.set_cookie(
            name,
            token,
            max_age=MAX_AGE,
            httponly=True,
            samesite="lax",
            secure=request.url.scheme == "https",
            path=path,
        )
    return True


@dataclass(frozen=True)
class LoginOutcome:
    """How a login ended: signed in (the cookie is set), refused, or throttled for some time."""

    signed_in: bool
    retry_after: int | None = None  # seconds, when throttled


async def log_in(
    request: Request, response: Response, *, email: str, password: str, workspace: str | None
) -> LoginOutcome:
    """Check a login (throttled first), set the session cookie on `response` when it is right,
    and audit it either way. A throttled attempt is not audited: it reaches no password check,
    and a flood of them must not become a flood of writes (the failures before it were)."""
    throttle: LoginThrottle = request.app.state.login_throttle
    client = request.client.host if request.client else "unknown"
    wait = await throttle.attempt(email=email, client=client)
    if wait is not None:
        return LoginOutcome(signed_in=False, retry_after=wait)
    database: Database = request.app.state.database
    candidates = await database.transaction(
        lambda s: agents.login_candidates(session=s, email=email, app_id=workspace)
    )
    found = await agents.authenticate(candidates, password)
    if found is not None and await start_session(request, response, found[0]):
        await throttle.succeeded(email=email, client=client)
        return LoginOutcome(signed_in=True)
    # A wrong password and an unknown email both end here, after the same argon2 work.
    await database.transaction(
        lambda s: agents.record_failed_login(
            session=s, email=email, app_id=workspace, candidates=candidates
        )
    )
    return LoginOutcome(signed_in=False)


async def end_session(request: Request, response: Response, login: SignedIn) -> None:
    database: Database = request.app.state.database
    await database.transaction(lambda s: agents.end_session(session=s, session_id=login.id))
    for path, name in COOKIE_PATHS.items():
        response.delete_cookie(name, path=path)


async def current_agent(request: Request) -> SignedIn:
    token = request.cookies.get(COOKIE) or request.cookies.get(ADMIN_COOKIE)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LoginRequired
    database: Database = request.app.state.database
    found = await database.transaction(lambda s: agents.session_for_token(session=s, token=token))
    if found is None:
        raise LoginRequired
    return found


def csrf_ok(login: SignedIn, submitted: str | None) -> bool:
    if submitted is None:
        return False
    return hmac.compare_digest(login.csrf_token.encode(), submitted.encode())


__all__ = [
    "LoginOutcome",
    "LoginRequired",
    "SignedIn",
    "csrf_ok",
    "current_agent",
    "end_session",
    "log_in",
    "start_session",
]

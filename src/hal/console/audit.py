"""The console's audit log: every agent and admin write, newest first, filtered by who, what
and when, paged by cursor (GET /audit)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import HTMLResponse

from hal.api.deps import DatabaseDep
from hal.api.errors import status_for
from hal.console.base import AdminDep, on_form, render, router
from hal.domain.errors import HalError
from hal.inbox.session import SignedIn
from hal.services import agents, projects
from hal.services.audit import audit_page

PAGE = 50


async def _actors(db: DatabaseDep, login: SignedIn) -> dict[str, str]:
    """Who each actor is, by its filter value ("agent:5": the agent's email)."""

    async def load(s: Any) -> dict[str, str]:
        team = await agents.list_agents(session=s, app_id=login.project.app_id)
        tokens = await projects.list_api_tokens(session=s, app_id=login.project.app_id)
        named = {f"agent:{a.id}": a.name or a.email for a in team}
        for token in tokens:
            named[f"token:{token.id}"] = (
                f"token “{token.label}”" if token.label else (f"token {token.prefix}…")
            )
        return named

    return await db.transaction(load)


@router.get("/audit")
async def audit_log(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    actor: Annotated[str | None, Query(max_length=40)] = None,
    action: Annotated[str | None, Query(max_length=64)] = None,
    since: Annotated[str | None, Query(max_length=40)] = None,
    until: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    """GET /audit with the same filters, read by the same service."""
    asked = {"actor": actor or None, "action": (action or "").strip() or None,
             "since": since or None, "until": until or None}  # fmt: skip
    page, status, errors = None, 200, {}
    try:
        page = await db.run(
            lambda tx: audit_page(
                tx, project_id=login.project.id, cursor=cursor, limit=PAGE, **asked
            )
        )
    except HalError as refused:
        status = status_for(refused)
        errors = on_form({refused.field or "form": refused.message}, *asked)
    actors = await _actors(db, login)
    who = [("", "anyone"), ("agent", "any agent"),
           *[(key, name) for key, name in actors.items() if key.startswith("agent:")],
           ("token", "any API token"),
           *[(key, name) for key, name in actors.items() if key.startswith("token:")],
           ("cli", "the command line")]  # fmt: skip
    more = {key: value for key, value in asked.items() if value}
    return render(request, "admin/audit.html", login, status=status, errors=errors,
                  title="Audit log", current="/admin/audit", page=page, asked=asked,
                  filters=more, actors=actors, who=who)  # fmt: skip

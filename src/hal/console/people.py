"""The console's agents screen: add an agent with a role, change a role, reset a password,
remove an agent (the last two end that agent's sessions at once)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from hal.api.deps import DatabaseDep, RowId
from hal.console.base import AdminDep, CsrfField, act, actor, back_to, render, router, validated
from hal.domain.roles import Role
from hal.inbox.session import SignedIn
from hal.schemas.agents import AgentCreate, AgentPatch
from hal.services import agents

Short = Annotated[str, Form(max_length=1024)]


async def _agents_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    found = await db.transaction(
        lambda s: agents.list_agents(session=s, app_id=login.project.app_id)
    )
    return render(request, "admin/agents.html", login, status=status, errors=errors,
                  title="Agents", current="/admin/agents", agents=found, roles=list(Role),
                  **context)  # fmt: skip


@router.get("/agents")
async def agents_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _agents_page(request, login, db)


@router.post("/agents")
async def add_agent(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    email: Short,
    password: Short,
    name: Short = "",
    role: Short = "agent",
    csrf: CsrfField = None,
) -> Response:
    """POST /agents."""
    submitted = {"email": email.strip(), "name": name.strip(), "role": role}

    async def create() -> object:
        body = validated(AgentCreate, {**submitted, "password": password,
                                       "name": submitted["name"] or None})  # fmt: skip
        return await db.transaction(
            lambda s: agents.create_agent(
                session=s, app_id=login.project.app_id, email=body.email, password=body.password,
                name=body.name, role=body.role, actor=actor(login),
            )
        )  # fmt: skip

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _agents_page(request, login, db, status=status, errors=errors,
                                  submitted=submitted)  # fmt: skip

    return await act(login, csrf, create, done=back_to("/admin/agents"), failed=failed)


async def _change(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    csrf: str | None,
    agent_id: int,
    changes: dict[str, Any],
) -> Response:
    """PATCH /agents/{agent_id}."""

    async def update() -> object:
        body = validated(AgentPatch, changes)
        return await db.transaction(
            lambda s: agents.update_agent(
                session=s, app_id=login.project.app_id, agent_id=agent_id,
                changes=body.model_dump(exclude_unset=True), actor=actor(login),
            )
        )  # fmt: skip

    async def failed(errors: dict[str, str], status: int) -> Response:
        shown = {f"{key}-{agent_id}": message for key, message in errors.items()}
        return await _agents_page(request, login, db, status=status, errors=shown)

    return await act(login, csrf, update, done=back_to("/admin/agents"), failed=failed)


@router.post("/agents/{agent_id}/role")
async def change_role(
    request: Request,
    agent_id: RowId,
    login: AdminDep,
    db: DatabaseDep,
    role: Short,
    csrf: CsrfField = None,
) -> Response:
    return await _change(request, login, db, csrf, agent_id, {"role": role})


@router.post("/agents/{agent_id}/password")
async def reset_password(
    request: Request,
    agent_id: RowId,
    login: AdminDep,
    db: DatabaseDep,
    password: Short,
    csrf: CsrfField = None,
) -> Response:
    return await _change(request, login, db, csrf, agent_id, {"password": password})


@router.post("/agents/{agent_id}/remove")
async def remove_agent(
    request: Request, agent_id: RowId, login: AdminDep, db: DatabaseDep, csrf: CsrfField = None
) -> Response:
    """DELETE /agents/{agent_id}."""

    async def remove() -> object:
        return await db.transaction(
            lambda s: agents.remove_agent(
                session=s, app_id=login.project.app_id, agent_id=agent_id, actor=actor(login)
            )
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        shown = {f"{key}-{agent_id}": message for key, message in errors.items()}
        return await _agents_page(request, login, db, status=status, errors=shown)

    return await act(login, csrf, remove, done=back_to("/admin/agents"), failed=failed)

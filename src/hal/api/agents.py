"""Agents under /api/projects/{app_id}/agents (admin token): the inbox's logins and their roles,
the same operations as `hal agents ...` (README "Agents and roles")."""

from __future__ import annotations

from fastapi import APIRouter, Response

from hal.api.body import StrictJSONRoute
from hal.api.deps import AdminProjectDep, DatabaseDep, RowId, TokenActorDep
from hal.api.errors import error_responses
from hal.db.models import Agent
from hal.domain.errors import InvalidInput
from hal.domain.roles import Role
from hal.schemas.agents import AgentCreate, AgentList, AgentOut, AgentPatch
from hal.services import agents

router = APIRouter(
    prefix="/api/projects/{app_id}/agents",
    tags=["admin"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422),
)


def agent_out(agent: Agent) -> AgentOut:
    return AgentOut(id=agent.id, email=agent.email, name=agent.name, role=Role(agent.role),
                    created_at=agent.created_at)  # fmt: skip


@router.get("", response_model=AgentList)
async def list_agents(project: AdminProjectDep, db: DatabaseDep) -> AgentList:
    """The project's agents with their roles."""
    found = await db.transaction(lambda s: agents.list_agents(session=s, app_id=project.app_id))
    return AgentList(items=[agent_out(a) for a in found])


@router.post("", status_code=201, response_model=AgentOut)
async def create_agent(
    body: AgentCreate, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> AgentOut:
    """Add an inbox login with a role (by default a project's first agent is its admin,
    later ones are agents)."""
    agent = await db.transaction(
        lambda s: agents.create_agent(
            session=s, app_id=project.app_id, email=body.email, password=body.password,
            name=body.name, role=body.role, actor=actor,
        )
    )  # fmt: skip
    return agent_out(agent)


@router.patch("/{agent_id}", response_model=AgentOut)
async def update_agent(
    agent_id: RowId,
    body: AgentPatch,
    project: AdminProjectDep,
    db: DatabaseDep,
    actor: TokenActorDep,
) -> AgentOut:
    """Change a role, a name or a password (a new password ends the agent's sessions); the
    last admin stays (409 `last_admin`)."""
    changes = body.model_dump(exclude_unset=True)
    for key in ("role", "password"):
        if key in changes and changes[key] is None:
            raise InvalidInput("invalid_field", f"{key} cannot be null", field=key)
    agent = await db.transaction(
        lambda s: agents.update_agent(
            session=s, app_id=project.app_id, agent_id=agent_id, changes=changes, actor=actor
        )
    )
    return agent_out(agent)


@router.delete("/{agent_id}", status_code=204, response_class=Response)
async def remove_agent(
    agent_id: RowId, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> Response:
    """Remove an inbox login; its sessions end at once. The last admin stays (409)."""
    await db.transaction(
        lambda s: agents.remove_agent(
            session=s, app_id=project.app_id, agent_id=agent_id, actor=actor
        )
    )
    return Response(status_code=204)

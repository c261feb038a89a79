"""Dependencies as Annotated aliases: the app's state and the caller's credentials."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Header, Request

from hal.config import Settings
from hal.db.engine import Database
from hal.db.models import Project
from hal.domain.errors import Forbidden, Unauthorized
from hal.services.audit import Actor
from hal.services.projects import project_for_api_token
from hal.services.widget_call import Caller


async def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


async def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


@dataclass(frozen=True)
class Widget:
    """What a widget route needs, resolved as one dependency (each one costs per request)."""

    db: Database
    settings: Settings
    caller: Caller


async def get_widget(
    request: Request,
    origin: Annotated[str | None, Header(include_in_schema=False)] = None,
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <session_token>` from identify, for verified visitors"),
    ] = None,
) -> Widget:
    state = request.app.state
    caller = Caller(
        origin=origin,
        bearer=bearer_token(authorization),
        client=request.client.host if request.client else None,
        admission=state.admission,
    )
    return Widget(db=state.database, settings=state.settings, caller=caller)


WidgetDep = Annotated[Widget, Depends(get_widget)]


async def get_team_project(
    request: Request,
    app_id: str,
    db: DatabaseDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>` from `hal tokens create`")
    ] = None,
) -> Project:
    """The project a team API token was made for; it must be the one in the path."""
    token = bearer_token(authorization)
    if token is None:
        raise Unauthorized(
            "missing_token", "send 'Authorization: Bearer <team API token>'", field="authorization"
        )
    found = await db.transaction(
        lambda session: project_for_api_token(session=session, token=token)
    )
    if found is None:
        raise Unauthorized("invalid_token", "this API token is not valid", field="authorization")
    project, scope, token_id = found
    if project.app_id != app_id:
        raise Forbidden(
            "token_not_for_project", "this API token belongs to another project", field="app_id"
        )
    request.state.token_scope = scope
    request.state.token_id = token_id
    return project


async def get_admin_project(request: Request, project: TeamProjectDep) -> Project:
    """As the team API, with a token made by `hal tokens create --admin`."""
    if request.state.token_scope != "admin":
        raise Forbidden(
            "admin_token_required",
            "project settings and secrets need an admin token (hal tokens create --admin)",
            field="authorization",
        )
    return project


async def get_token_actor(request: Request, project: TeamProjectDep) -> Actor:
    """The API token making a team or admin write, for the audit log."""
    del project  # resolved first: it authenticates the token
    return Actor("token", request.state.token_id)


TeamProjectDep = Annotated[Project, Depends(get_team_project)]
AdminProjectDep = Annotated[Project, Depends(get_admin_project)]
TokenActorDep = Annotated[Actor, Depends(get_token_actor)]

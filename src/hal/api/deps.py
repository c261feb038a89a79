"""Dependencies as Annotated aliases: the app's state and the caller's credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Path, Query, Request

from hal.api.errors import WIDGET_PREFIX, status_for
from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.models import Project
from hal.domain.errors import Forbidden, HalError, Unauthorized
from hal.services.audit import Actor
from hal.services.installation import Claim, Installation
from hal.services.paging import MAX_ID, MAX_PAGE
from hal.services.projects import project_for_api_token
from hal.services.widget_call import Caller, run_widget_call

T = TypeVar("T")


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
    installation: Installation
    route: str  # the path after /api/widget/

    async def run(
        self,
        app_id: str,
        visitor_id: str,
        work: Callable[[Tx, Caller], Awaitable[T]],
        *,
        claim: Claim | None = None,
    ) -> T:
        """The widget call's one transaction, admitted once (services/widget_call.py), and
        tallied for the installation check (identify's with its `claim`)."""
        installation, origin = self.installation, self.caller.origin
        try:
            result = await run_widget_call(
                self.db, self.caller, app_id=app_id, visitor_id=visitor_id, work=work
            )
        except HalError as exc:
            if installation.counting:
                installation.refused(app_id, origin, visitor_id=visitor_id, route=self.route,
                                     status=status_for(exc), error=exc, identify=claim)  # fmt: skip
            raise
        if installation.counting:
            installation.served(
                app_id, origin, visitor_id=visitor_id, route=self.route, identify=claim,
                warnings=getattr(result, "warnings", ()), proven=getattr(result, "proven", False),
            )  # fmt: skip
        return result


async def get_widget(request: Request) -> Widget:
    """The widget call's caller, from its `Origin` and `Authorization` headers (read here, not
    declared as FastAPI header parameters: their per-request validation cost a fifth of a
    repeat identify; `SESSION_TOKEN_HEADER` documents the header on each route)."""
    state = request.app.state
    headers = request.headers
    caller = Caller(
        origin=headers.get("origin"),
        bearer=bearer_token(headers.get("authorization")),
        client=request.client.host if request.client else None,
        admission=state.admission,
    )
    route = request.scope["path"].removeprefix(WIDGET_PREFIX)
    return Widget(state.database, state.settings, caller, state.installation, route)


# The widget routes' `Authorization` header in OpenAPI (`openapi_extra` of each route).
SESSION_TOKEN_HEADER: dict[str, Any] = {
    "parameters": [
        {
            "name": "authorization",
            "in": "header",
            "required": False,
            "schema": {
                "anyOf": [{"type": "string"}, {"type": "null"}],
                "description": "`Bearer <session_token>` from identify, for verified visitors",
                "title": "Authorization",
            },
            "description": "`Bearer <session_token>` from identify, for verified visitors",
        }
    ]
}


WidgetDep = Annotated[Widget, Depends(get_widget)]


@dataclass(frozen=True)
class TeamAuth:
    """A team API token's grant: the project it was made for, and its scope."""

    project: Project
    scope: str  # "team" or "admin"
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


async def get_team_auth(
    app_id: str,
    db: DatabaseDep,
    authorization: Annotated[
        str | None, Header(description="`Bearer <token>` from `hal tokens create`")
    ] = None,
) -> TeamAuth:
    """The grant of a team API token; its project must be the one in the path."""
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
    return TeamAuth(project, scope, token_id)


TeamAuthDep = Annotated[TeamAuth, Depends(get_team_auth)]


async def get_team_project(auth: TeamAuthDep) -> Project:
    return auth.project


async def get_admin_project(auth: TeamAuthDep) -> Project:
    """As the team API, with a token made by `hal tokens create --admin`."""
    if not auth.is_admin:
        raise Forbidden(
            "admin_token_required",
            "project settings and secrets need an admin token (hal tokens create --admin)",
            field="authorization",
        )
    return auth.project


async def get_token_actor(auth: TeamAuthDep) -> Actor:
    """The API token making a team or admin write, for the audit log."""
    return Actor("token", auth.token_id)


TeamProjectDep = Annotated[Project, Depends(get_team_project)]
AdminProjectDep = Annotated[Project, Depends(get_admin_project)]
TokenActorDep = Annotated[Actor, Depends(get_token_actor)]


# Path and query parameters of the team routes. Ids the database can hold: a larger or
# non-positive one is a 422 naming the field, not a 500.
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]
Cursor = Annotated[str | None, Query(max_length=64, description="next_cursor of the last page")]
Limit = Annotated[int, Query(ge=1, le=MAX_PAGE)]

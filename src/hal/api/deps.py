"""Dependencies as Annotated aliases: the app's state and the caller's credentials."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Path, Query, Request, Security
from fastapi.openapi.models import APIKey, APIKeyIn
from fastapi.openapi.models import HTTPBearer as HTTPBearerModel
from fastapi.security.base import SecurityBase

from hal.api.errors import WIDGET_PREFIX, status_for
from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.models import Project
from hal.domain.errors import Forbidden, HalError, Unauthorized
from hal.services.audit import Actor
from hal.services.installation import Claim, Installation
from hal.services.paging import MAX_ID, MAX_PAGE
from hal.services.projects import project_for_api_token
from hal.services.repeat_answers import KeptAnswer, still_holds
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


# The credentials as the OpenAPI document declares them, so Swagger's Authorize and client
# generators send them. Each hands its raw value on to the dependency that checks it:
# declaring a credential changes nothing of how it is checked.


class BearerScheme(SecurityBase):
    """A bearer credential in the Authorization header: the header as sent, or None."""

    def __init__(self, scheme_name: str, description: str, bearer_format: str | None = None):
        self.model = HTTPBearerModel(bearerFormat=bearer_format, description=description)
        self.scheme_name = scheme_name

    async def __call__(self, request: Request) -> str | None:
        return request.headers.get("authorization")


class QueryScheme(SecurityBase):
    """A credential in a query parameter: its value as sent, or None."""

    def __init__(self, scheme_name: str, parameter: str, description: str):
        self.model = APIKey(**{"in": APIKeyIn.query}, name=parameter, description=description)
        self.scheme_name = scheme_name
        self.parameter = parameter

    async def __call__(self, request: Request) -> str | None:
        return request.query_params.get(self.parameter)


WIDGET_SESSION = BearerScheme(
    "widgetSession",
    "The `session_token` identify answered. Optional, except for a visitor bound to a "
    "verified contact, whose every later call needs it (or a valid user_hash).",
    bearer_format="JWT",
)
TEAM_TOKEN = BearerScheme(
    "teamToken", "A team API token of the project: `hal tokens create --app-id ID`."
)
ADMIN_TOKEN = BearerScheme(
    "adminToken",
    "An admin token of the project: `hal tokens create --app-id ID --admin`. Settings, "
    "secrets, tokens, agents, webhooks, the audit log; it opens every team route too.",
)
STREAM_TICKET = QueryScheme(
    "streamTicket",
    "ticket",
    "A ticket from `POST /api/projects/{app_id}/stream-tickets`: opens the project's stream "
    "once, within 60 seconds, where no header can be sent (a browser's EventSource).",
)

WidgetSessionHeader = Annotated[str | None, Security(WIDGET_SESSION)]
TeamTokenHeader = Annotated[str | None, Security(TEAM_TOKEN)]
AdminTokenHeader = Annotated[str | None, Security(ADMIN_TOKEN)]
StreamTicketQuery = Annotated[str | None, Security(STREAM_TICKET)]


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
        try:
            result = await run_widget_call(
                self.db, self.caller, app_id=app_id, visitor_id=visitor_id, work=work
            )
        except HalError as exc:
            self._refused(app_id, visitor_id, exc, claim)
            raise
        self._served(app_id, visitor_id, claim, getattr(result, "warnings", ()),
                     getattr(result, "proven", False))  # fmt: skip
        return result

    async def again(self, kept: KeptAnswer) -> bool:
        """Whether an identify answer kept for this call still holds (one read, its own
        transaction: services/repeat_answers.py); if so the call is admitted and counted
        as `run` would have, else it counts nothing (the usual path then does)."""
        caller, app_id, visitor_id = self.caller, kept.app_id, kept.visitor_id
        if not await self.db.run(lambda tx: still_holds(tx, kept, caller.origin)):
            return False
        try:
            if caller.admission is not None:
                await caller.admission.admit(app_id, visitor_id, caller.client)
        except HalError as exc:
            self._refused(app_id, visitor_id, exc, kept.claim)
            raise
        self._served(app_id, visitor_id, kept.claim, kept.warnings, kept.proven)
        return True

    def _refused(self, app_id: str, visitor_id: str, exc: HalError, claim: Claim | None) -> None:
        if self.installation.counting:
            self.installation.refused(
                app_id, self.caller.origin, visitor_id=visitor_id, route=self.route,
                status=status_for(exc), error=exc, identify=claim,
            )  # fmt: skip

    def _served(
        self,
        app_id: str,
        visitor_id: str,
        claim: Claim | None,
        warnings: tuple[str, ...],
        proven: bool,
    ) -> None:
        if self.installation.counting:
            self.installation.served(
                app_id, self.caller.origin, visitor_id=visitor_id, route=self.route,
                identify=claim, warnings=warnings, proven=proven,
            )  # fmt: skip


def widget_of(request: Request) -> Widget:
    """The widget call's caller, from its `Origin` and `Authorization` headers (read here, not
    declared as FastAPI header parameters: their per-request validation cost a fifth of a
    repeat identify; `WIDGET_SESSION_SECURITY` declares the credential on each route). Every
    widget route calls it itself: as a dependency, FastAPI's solving of it cost a twentieth
    of a track call (bench/RESULTS.md, "The hot path, ninth pass")."""
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


# The widget routes' credential in OpenAPI (`openapi_extra` of each route): the session token,
# or nothing (only a visitor bound to a verified contact needs one). Declared, not a dependency,
# so the hot path pays nothing for it; the scheme itself comes from the widget stream's
# `WidgetSessionHeader` (a stream opens once).
WIDGET_SESSION_SECURITY: dict[str, Any] = {"security": [{"widgetSession": []}, {}]}


@dataclass(frozen=True)
class TeamAuth:
    """A team API token's grant: the project it was made for, and its scope."""

    project: Project
    scope: str  # "team" or "admin"
    token_id: int

    @property
    def is_admin(self) -> bool:
        return self.scope == "admin"


async def api_token_grant(app_id: str, db: Database, authorization: str | None) -> TeamAuth:
    """The grant of an API token (team or admin) sent as `authorization`; its project must be
    the one in the path."""
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


async def get_team_auth(
    app_id: str,
    db: DatabaseDep,
    authorization: Annotated[str | None, Header(include_in_schema=False)] = None,
) -> TeamAuth:
    """The request's API token grant, checked once however many dependencies ask for it.
    The document's credential is declared by the route's project dependency below."""
    return await api_token_grant(app_id, db, authorization)


TeamAuthDep = Annotated[TeamAuth, Depends(get_team_auth)]


async def get_team_project(
    auth: TeamAuthDep, _team: TeamTokenHeader, _admin: AdminTokenHeader
) -> Project:
    """A team route's project: a team token or an admin token of it."""
    return auth.project


async def get_admin_project(auth: TeamAuthDep, _admin: AdminTokenHeader) -> Project:
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

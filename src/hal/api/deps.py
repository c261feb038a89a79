"""Dependencies as Annotated aliases: the app's state and the caller's credentials."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from hal.config import Settings
from hal.db.engine import Database
from hal.services.visitors import Caller


def get_database(request: Request) -> Database:
    database: Database = request.app.state.database
    return database


def get_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def bearer_token(authorization: str | None) -> str | None:
    if authorization and authorization[:7].lower() == "bearer ":
        return authorization[7:].strip() or None
    return None


def get_caller(
    origin: Annotated[str | None, Header(include_in_schema=False)] = None,
    authorization: Annotated[
        str | None,
        Header(description="`Bearer <session_token>` from identify, for verified visitors"),
    ] = None,
) -> Caller:
    return Caller(origin=origin, bearer=bearer_token(authorization))


DatabaseDep = Annotated[Database, Depends(get_database)]
SettingsDep = Annotated[Settings, Depends(get_settings)]
CallerDep = Annotated[Caller, Depends(get_caller)]

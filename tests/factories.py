"""Small factories for test data: projects, identify payloads, signatures."""

from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass
from typing import Any

from hal.db.engine import Database
from hal.domain.projects import TokenKind
from hal.domain.stages import StageMode
from hal.domain.verification import VerificationMode, compute_user_hash
from hal.services.projects import ProjectSettings, create_api_token, create_project


@dataclass(frozen=True)
class TestProject:
    __test__ = False
    app_id: str
    secret: str

    def hash(self, value: str) -> str:
        return compute_user_hash(self.secret, value)


async def make_project(
    database: Database,
    *,
    verification: VerificationMode | str = VerificationMode.ENABLED,
    stage_mode: StageMode | str | None = None,
    stages: list[str] | None = None,
    allowed_origins: list[str] | None = None,
    protected_keys: list[str] | None = None,
) -> TestProject:
    settings = ProjectSettings(
        identity_verification=VerificationMode(verification),
        stage_mode=StageMode(stage_mode) if stage_mode else None,
        stages=stages,
        allowed_origins=allowed_origins,
        protected_keys=protected_keys,
    )

    async def work(session: Any) -> TestProject:
        project = await create_project(
            session=session, app_id=f"t_{secrets.token_hex(6)}", settings=settings
        )
        return TestProject(app_id=project.app_id, secret=project.identity_secret)

    return await database.transaction(work)


def unique(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


def unique_email(name: str = "user") -> str:
    return f"{name}.{secrets.token_hex(4)}@example.com"


def identify_payload(project: TestProject, **fields: Any) -> dict[str, Any]:
    """An identify body; `signed=True` adds the right user_hash."""
    signed = fields.pop("signed", False)
    payload = {"app_id": project.app_id, "visitor_id": fields.pop("visitor_id", unique("v"))}
    payload.update(fields)
    if signed:
        value = payload.get("user_id") or payload["email"]
        payload["user_hash"] = project.hash(value)
    return payload


async def make_token(database: Database, project: TestProject, *, admin: bool = False) -> str:
    kind = TokenKind.ADMIN if admin else TokenKind.TEAM

    async def work(session: Any) -> str:
        issued = await create_api_token(session=session, app_id=project.app_id, kind=kind)
        return issued.token

    return await database.transaction(work)


async def number_all_changes(database: Database) -> None:
    """Wait until every committed change has its id (PostgreSQL numbers them after commit,
    once every older transaction on the server has ended)."""
    from sqlalchemy import func, select

    from hal.db.models import Change

    for _ in range(200):
        await database.number_changes()
        async with database.sessionmaker() as session:
            left = await session.scalar(select(func.count()).where(Change.id.is_(None)))
        if not left:
            return
        await asyncio.sleep(0.05)
    raise AssertionError("committed changes were left without an id")

"""Project settings cached per process, never older than `MAX_AGE_SECONDS`.

Every widget call needs its project's settings and secrets; reading them once a second
instead of on every call saves a statement per request. A change made by another process
(`hal projects update`, `rotate-secret --grace 0`, the admin API of another server) takes
effect here within `MAX_AGE_SECONDS`; a change committed through this process's ORM clears the
cache at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

from sqlalchemy import Table, bindparam, event, select
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import Session

from hal.db.models import AttributeDefinition, Project
from hal.domain.attributes import Attribute, AttrType, Model, Source
from hal.domain.projects import CompanyClaims, ProjectConfig
from hal.domain.stages import StageMode
from hal.domain.verification import VerificationMode

MAX_AGE_SECONDS = 1.0  # the contract is "never older than 2 s on any process"

_generation = 0  # bumped by every commit that changed a project through this process's ORM


@event.listens_for(Session, "before_flush")
def _note_project_change(session: Session, _context: Any, _instances: Any) -> None:
    if any(isinstance(obj, Project) for obj in (*session.new, *session.dirty, *session.deleted)):
        session.info["projects_changed"] = True


def attributes_changed() -> None:
    """A definition was made or edited in this process: every cached entry is stale."""
    global _generation
    _generation += 1


def committed(session_info: dict[str, Any]) -> None:
    """A transaction whose ORM session wrote a project has committed: every cached entry of
    this process is stale."""
    global _generation
    if session_info.pop("projects_changed", False):
        _generation += 1


_SELECT = select(
    Project.id,
    Project.app_id,
    Project.identity_verification,
    Project.stage_mode,
    Project.stages,
    Project.allowed_origins,
    Project.protected_keys,
    Project.company_claims,
    Project.identity_secret,
    Project.previous_identity_secret,
    Project.previous_secret_expires_at,
    Project.session_secret,
    Project.suppression_key,
)
_BY_APP_ID = _SELECT.where(Project.app_id == bindparam("app_id"))


ATTRIBUTES = cast(Table, AttributeDefinition.__table__)
ATTRIBUTE_COLUMNS = (
    ATTRIBUTES.c.model,
    ATTRIBUTES.c.key,
    ATTRIBUTES.c.type,
    ATTRIBUTES.c.source,
    ATTRIBUTES.c.label,
    ATTRIBUTES.c.description,
    ATTRIBUTES.c.options,
    ATTRIBUTES.c.archived,
)
_OF_PROJECT = select(*ATTRIBUTE_COLUMNS).where(ATTRIBUTES.c.project_id == bindparam("project_id"))


def attribute_of(row: Any) -> Attribute:
    return Attribute(
        model=Model(row.model),
        key=row.key,
        type=AttrType(row.type),
        source=Source(row.source),
        label=row.label,
        description=row.description,
        options=tuple(row.options or ()),
        archived=bool(row.archived),
    )


async def project_attributes(
    connection: AsyncConnection, project_id: int
) -> dict[Model, dict[str, Attribute]]:
    """Every definition of the project, by model and key."""
    found: dict[Model, dict[str, Attribute]] = {model: {} for model in Model}
    for row in await connection.execute(_OF_PROJECT, {"project_id": project_id}):
        attribute = attribute_of(row)
        found[attribute.model][attribute.key] = attribute
    return found


def config_of(row: Any) -> ProjectConfig:
    return ProjectConfig(
        id=row.id,
        app_id=row.app_id,
        identity_verification=VerificationMode(row.identity_verification),
        stage_mode=StageMode(row.stage_mode),
        stages=tuple(row.stages),
        allowed_origins=tuple(row.allowed_origins),
        protected_keys=frozenset(row.protected_keys),
        company_claims=CompanyClaims(row.company_claims),
        identity_secret=row.identity_secret,
        previous_identity_secret=row.previous_identity_secret,
        previous_secret_expires_at=row.previous_secret_expires_at,
        session_secret=row.session_secret,
        suppression_key=row.suppression_key,
    )


class ProjectCache:
    """app_id -> ProjectConfig (or None for an unknown app_id), per process."""

    def __init__(
        self,
        *,
        max_age: float = MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age, self.clock = max_age, clock
        self._entries: dict[str, tuple[float, int, ProjectConfig | None]] = {}

    def learn(self, project_id: int, attributes: Mapping[str, Attribute]) -> None:
        """Attribute definitions this process just committed: cached entries take them at
        once, without a read (other processes read them within `max_age`)."""
        for app_id, (at, generation, config) in list(self._entries.items()):
            if config is None or config.id != project_id:
                continue
            merged = {model: dict(config.attributes_of(model)) for model in Model}
            for attribute in attributes.values():
                merged[attribute.model][attribute.key] = attribute
            self._entries[app_id] = (at, generation, replace(config, attributes=merged))

    async def get(self, connection: AsyncConnection, app_id: str) -> ProjectConfig | None:
        now = self.clock()
        entry = self._entries.get(app_id)
        if entry is not None and now - entry[0] < self.max_age and entry[1] == _generation:
            return entry[2]
        generation = _generation
        row = (await connection.execute(_BY_APP_ID, {"app_id": app_id})).first()
        config = None
        if row is not None:
            config = replace(
                config_of(row), attributes=await project_attributes(connection, row.id)
            )
        if entry is not None and entry[2] == config:
            config = entry[2]  # the same object while unchanged (services/repeat_answers.py)
        if len(self._entries) > 10_000:  # unknown app_ids must not grow memory without bound
            self._entries.clear()
        self._entries[app_id] = (now, generation, config)
        return config

"""Attributes under /api/projects/{app_id}/attributes: the team lists them, an admin defines
and edits them (README "Attributes")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from hal.api.body import StrictJSONRoute
from hal.api.deps import (
    AdminProjectDep,
    DatabaseDep,
    SettingsDep,
    TeamProjectDep,
    TokenActorDep,
)
from hal.api.errors import error_responses
from hal.db.engine import Tx
from hal.db.models import Project
from hal.domain.attributes import Attribute, Model, Source
from hal.domain.projects import ProjectConfig
from hal.schemas.attributes import AttributeCreate, AttributeList, AttributeOut, AttributePatch
from hal.services import attributes

router = APIRouter(
    prefix="/api/projects/{app_id}/attributes",
    tags=["attributes"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


def attribute_out(view: attributes.AttributeView) -> AttributeOut:
    attribute = view.attribute
    return AttributeOut(
        model=attribute.model,
        key=attribute.key,
        type=attribute.type,
        label=attribute.label,
        description=attribute.description,
        options=list(attribute.options) if attribute.type == "list" else None,
        source=attribute.source,
        archived=attribute.archived,
        protected=view.protected,
        nonconforming=view.nonconforming,
        created_at=view.created_at,
    )


async def _config(tx: Tx, project: Project) -> ProjectConfig:
    return await tx.project(project.app_id)


@router.get("", response_model=AttributeList)
async def list_attributes(project: TeamProjectDep, db: DatabaseDep) -> AttributeList:
    """The built-in fields and every attribute of contacts and companies, with their types."""

    async def work(tx: Tx) -> list[attributes.AttributeView]:
        return await attributes.list_attributes(tx, project=await _config(tx, project))

    return AttributeList(items=[attribute_out(view) for view in await db.run(work)])


@router.post("", response_model=AttributeOut, status_code=201, responses=error_responses(409))
async def create_attribute(
    body: AttributeCreate,
    project: AdminProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: TokenActorDep,
) -> AttributeOut:
    """Define an attribute before its first use, to pick its type (`date`, `list`, ...)."""
    attribute = Attribute(
        model=body.model,
        key=body.key,
        type=body.type,
        source=Source.ADMIN,
        label=body.label,
        description=body.description,
        options=tuple(body.options or ()),
    )

    async def work(tx: Tx) -> attributes.AttributeView:
        return await attributes.create_attribute(
            tx,
            project=await _config(tx, project),
            attribute=attribute,
            limits=settings.limits,
            actor=actor,
        )

    return attribute_out(await db.run(work))


@router.patch("/{model}/{key}", response_model=AttributeOut)
async def edit_attribute(
    model: Model,
    key: Annotated[str, Path(min_length=1, max_length=64)],
    body: AttributePatch,
    project: AdminProjectDep,
    db: DatabaseDep,
    actor: TokenActorDep,
) -> AttributeOut:
    """Edit an attribute's label, description, options or archived flag; its type stays."""
    changes = body.model_dump(exclude_unset=True)
    if "options" in changes:
        changes["options"] = tuple(changes["options"] or ())

    async def work(tx: Tx) -> attributes.AttributeView:
        return await attributes.edit_attribute(
            tx, project=await _config(tx, project), model=model, key=key, changes=changes,
            actor=actor,
        )  # fmt: skip

    return attribute_out(await db.run(work))

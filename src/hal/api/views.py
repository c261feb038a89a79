"""Saved views under /api/projects/{app_id}/views: the team's named searches, each with its
count now (README "Saved views")."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from hal.api.body import StrictJSONRoute
from hal.api.deps import DatabaseDep, RowId, TeamProjectDep, TokenActorDep
from hal.api.errors import error_responses
from hal.db.engine import Tx
from hal.db.models import Project
from hal.domain.projects import ProjectConfig
from hal.domain.search import Kind
from hal.schemas.views import ViewCreate, ViewList, ViewOut, ViewPatch
from hal.services import views

router = APIRouter(
    prefix="/api/projects/{app_id}/views",
    tags=["views"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


def view_out(counted: views.CountedView) -> ViewOut:
    view = counted.view
    return ViewOut(
        id=view.id,
        name=view.name,
        model=view.model,
        query=view.query,
        sort=view.sort,
        count=counted.count,
        count_exact=counted.count_exact,
        problem=counted.problem,
        created_at=view.created_at,
        updated_at=view.updated_at,
    )


async def _config(tx: Tx, project: Project) -> ProjectConfig:
    return await tx.project(project.app_id)


@router.get("", response_model=ViewList)
async def list_views(
    project: TeamProjectDep,
    db: DatabaseDep,
    model: Annotated[Kind | None, Query(description="only the views of this model")] = None,
) -> ViewList:
    """The project's views (of one model with `model`), oldest first, each with its count."""

    async def work(tx: Tx) -> list[views.CountedView]:
        return await views.list_views(tx, project=await _config(tx, project), model=model)

    return ViewList(items=[view_out(counted) for counted in await db.run(work)])


@router.post("", response_model=ViewOut, status_code=201, responses=error_responses(409))
async def create_view(
    body: ViewCreate, project: TeamProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> ViewOut:
    """Save a search under a name (unique among the project's views of that model)."""

    async def work(tx: Tx) -> views.CountedView:
        return await views.create_view(
            tx, project=await _config(tx, project), name=body.name, model=body.model,
            query=body.query, sort=body.sort, actor=actor,
        )  # fmt: skip

    return view_out(await db.run(work))


@router.get("/{view_id}", response_model=ViewOut)
async def get_view(view_id: RowId, project: TeamProjectDep, db: DatabaseDep) -> ViewOut:
    """One view with its count now."""

    async def work(tx: Tx) -> views.CountedView:
        return await views.read_view(tx, project=await _config(tx, project), view_id=view_id)

    return view_out(await db.run(work))


@router.patch("/{view_id}", response_model=ViewOut, responses=error_responses(409))
async def edit_view(
    view_id: RowId,
    body: ViewPatch,
    project: TeamProjectDep,
    db: DatabaseDep,
    actor: TokenActorDep,
) -> ViewOut:
    """Rename a view or change its query or sort (null clears either); its model stays."""
    changes = body.model_dump(exclude_unset=True)

    async def work(tx: Tx) -> views.CountedView:
        return await views.edit_view(
            tx, project=await _config(tx, project), view_id=view_id, changes=changes, actor=actor
        )

    return view_out(await db.run(work))


@router.delete("/{view_id}", status_code=204, response_class=Response)
async def delete_view(
    view_id: RowId, project: TeamProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> None:
    """Remove a view (its records stay)."""

    async def work(tx: Tx) -> None:
        await views.delete_view(
            tx, project=await _config(tx, project), view_id=view_id, actor=actor
        )

    await db.run(work)

"""The installation check and the refusals log under /api/projects/{app_id} (admin token):
where the widget is called from, how identify's proofs fare, and why calls were refused."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from hal.api.body import StrictJSONRoute
from hal.api.deps import AdminProjectDep, Cursor, DatabaseDep, Limit
from hal.api.errors import error_responses
from hal.domain.installation import MAX_DAYS
from hal.schemas.installation import (
    EnforcementImpact,
    IdentifyCounts,
    InstallationOut,
    OriginOut,
    RefusalOut,
    RefusalPage,
)
from hal.services import installation

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["admin"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 422),
)


@router.get("/installation", response_model=InstallationOut)
async def installation_check(
    request: Request,
    project: AdminProjectDep,
    db: DatabaseDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
) -> InstallationOut:
    """Widget calls of the last `days` days by origin, identify's proofs, and how many users
    enforcing identity verification now would refuse."""
    found = await db.run(lambda tx: installation.report(tx, project_id=project.id, days=days))
    return InstallationOut(
        days=found.days,
        origins=[
            OriginOut(
                origin=o.origin,
                calls=o.calls,
                identify=IdentifyCounts(
                    total=o.verified + o.unsigned + sum(o.failed.values()),
                    verified=o.verified,
                    unsigned=o.unsigned,
                    failed=o.failed,
                ),
                first_seen_at=o.first_seen_at,
                last_seen_at=o.last_seen_at,
            )
            for o in found.origins
        ],
        enforcement_impact=EnforcementImpact(
            users=found.users_seen,
            never_verified=found.users_never_proven,
            summary=f"enforcing now would refuse {found.users_never_proven} of "
            f"{found.users_seen} identified users seen in {found.days} days",
        ),
        flush_seconds=request.app.state.installation.flush_seconds,
    )


@router.get("/refusals", response_model=RefusalPage)
async def refusals(
    project: AdminProjectDep, db: DatabaseDep, cursor: Cursor = None, limit: Limit = 50
) -> RefusalPage:
    """The latest refused widget calls (and calls answered with warnings), newest first."""
    page = await db.run(
        lambda tx: installation.refusals(tx, project_id=project.id, cursor=cursor, limit=limit)
    )
    return RefusalPage(
        items=[RefusalOut.model_validate(row, from_attributes=True) for row in page.items],
        next_cursor=page.next_cursor,
    )

"""Admin API under /api/projects/{app_id}/settings: a project's settings and identity secret,
with a token from `hal tokens create --admin` (the same operations as `hal projects ...`)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter

from hal.api.body import StrictJSONRoute
from hal.api.deps import AdminProjectDep, DatabaseDep, TokenActorDep
from hal.api.errors import error_responses
from hal.schemas import ProjectOut, ProjectPatch, RotatedSecretOut, RotateSecretRequest
from hal.services import projects

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["admin"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


@router.get("/settings", response_model=ProjectOut)
async def get_settings(project: AdminProjectDep) -> ProjectOut:
    """The project's settings (never its secret)."""
    return projects.project_view(project)


@router.patch("/settings", response_model=ProjectOut)
async def patch_settings(
    body: ProjectPatch, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> ProjectOut:
    """Change settings: verification mode, stage mode and pipeline, origins, protected keys."""
    changes = projects.ProjectSettings(**body.model_dump(exclude_unset=True))
    updated = await db.transaction(
        lambda s: projects.update_project(
            session=s, app_id=project.app_id, settings=changes, actor=actor
        )
    )
    return projects.project_view(updated)


@router.post("/settings/rotate-secret", response_model=RotatedSecretOut)
async def rotate_secret(
    body: RotateSecretRequest, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> RotatedSecretOut:
    """Issue a new identity secret; the old one verifies until the grace period ends."""
    rotated = await db.transaction(
        lambda s: projects.rotate_secret(
            session=s,
            app_id=project.app_id,
            grace=timedelta(seconds=body.grace_seconds),
            revoke_sessions=body.revoke_sessions,
            actor=actor,
        )
    )
    assert rotated.previous_secret_expires_at is not None
    return RotatedSecretOut(
        app_id=rotated.app_id,
        identity_secret=rotated.identity_secret,
        previous_secret_expires_at=rotated.previous_secret_expires_at,
    )

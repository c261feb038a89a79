"""Admin API under /api/projects/{app_id}: a project's settings and identity secret, a
user_hash check, and its API tokens, with a token from `hal tokens create --admin` (the same
operations as `hal projects ...` and `hal tokens ...`)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Response

from hal.api.body import StrictJSONRoute
from hal.api.deps import AdminProjectDep, DatabaseDep, RowId, TokenActorDep
from hal.api.errors import error_responses
from hal.db.models import ApiToken
from hal.domain.projects import TokenKind
from hal.schemas import ProjectOut, ProjectPatch, RotatedSecretOut, RotateSecretRequest
from hal.schemas.admin import (
    CheckHashOut,
    CheckHashRequest,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
)
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


@router.post("/settings/check-hash", response_model=CheckHashOut)
async def check_hash(
    body: CheckHashRequest, project: AdminProjectDep, db: DatabaseDep
) -> CheckHashOut:
    """Whether a user_hash is right for a user_id or an email (exactly one), by the current
    secret or, during a rotation's grace period, the previous one; the secret is never shown."""
    checked = await db.transaction(
        lambda s: projects.check_user_hash(
            session=s, app_id=project.app_id, user_id=body.user_id, email=body.email,
            user_hash=body.user_hash,
        )
    )  # fmt: skip
    return CheckHashOut(valid=checked.valid, signed=checked.signed, secret=checked.secret)


def token_out(row: ApiToken) -> TokenOut:
    return TokenOut(
        id=row.id, label=row.label, kind=TokenKind(row.scope), prefix=row.prefix,
        created_at=row.created_at, last_used_at=row.last_used_at, revoked_at=row.revoked_at,
    )  # fmt: skip


@router.get("/tokens", response_model=TokenList)
async def list_tokens(project: AdminProjectDep, db: DatabaseDep) -> TokenList:
    """The project's API tokens, revoked ones too, newest first (never a token or its hash)."""
    rows = await db.transaction(
        lambda s: projects.list_api_tokens(session=s, app_id=project.app_id)
    )
    return TokenList(items=[token_out(row) for row in rows])


@router.post("/tokens", status_code=201, response_model=TokenCreated)
async def create_token(
    body: TokenCreate, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> TokenCreated:
    """A new API token, shown this once."""
    issued = await db.transaction(
        lambda s: projects.create_api_token(
            session=s, app_id=project.app_id, kind=body.kind, label=body.label, actor=actor
        )
    )
    return TokenCreated(**token_out(issued.row).model_dump(), token=issued.token)


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
async def revoke_token(
    token_id: RowId, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> Response:
    """Revoke a token at once (the one making this call too): it answers 401 from then on and
    its streams end. Revoking a revoked token changes nothing."""
    await db.transaction(
        lambda s: projects.revoke_api_token(
            session=s, app_id=project.app_id, token_id=token_id, actor=actor
        )
    )
    return Response(status_code=204)

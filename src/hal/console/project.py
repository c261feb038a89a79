"""The console's project screens: settings, identity verification (mode, secret rotation,
the enforcement impact), the installation check and the refusals log."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, Response

from hal.api.deps import DatabaseDep
from hal.console.base import (
    AdminDep,
    CsrfField,
    act,
    actor,
    back_to,
    lines,
    render,
    router,
    validated,
)
from hal.domain.installation import MAX_DAYS
from hal.domain.projects import CompanyClaims
from hal.domain.stages import StageMode
from hal.domain.verification import VerificationMode
from hal.inbox.session import SignedIn
from hal.schemas import ProjectPatch, RotateSecretRequest
from hal.schemas.admin import CheckHashRequest
from hal.services import installation, projects

Text = Annotated[str, Form(max_length=20_000)]


def _settings_page(
    request: Request, login: SignedIn, *, status: int = 200, errors: Any = None, **values: Any
) -> HTMLResponse:
    shown = projects.project_view(login.project).model_dump()
    return render(request, "admin/settings.html", login, status=status, errors=errors,
                  title="Settings", current="/admin/settings", project=shown | values,
                  stage_modes=list(StageMode), claims=list(CompanyClaims))  # fmt: skip


@router.get("/settings")
async def settings_page(request: Request, login: AdminDep) -> HTMLResponse:
    return _settings_page(request, login)


async def update_settings(db: DatabaseDep, login: SignedIn, changes: dict[str, Any]) -> object:
    """PATCH /settings: the same body model and the same service call."""
    body = validated(ProjectPatch, changes)
    settings = projects.ProjectSettings(**body.model_dump(exclude_unset=True))
    return await db.transaction(
        lambda s: projects.update_project(
            session=s, app_id=login.project.app_id, settings=settings, actor=actor(login)
        )
    )


@router.post("/settings")
async def save_settings(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    name: Annotated[str, Form(max_length=1000)],
    allowed_origins: Text = "",
    stage_mode: Annotated[str, Form(max_length=32)] = "overwrite",
    stages: Text = "",
    protected_keys: Text = "",
    company_claims: Annotated[str, Form(max_length=32)] = "open",
    csrf: CsrfField = None,
) -> Response:
    changes = {
        "name": name.strip(),
        "allowed_origins": lines(allowed_origins),
        "stage_mode": stage_mode,
        "stages": lines(stages),
        "protected_keys": lines(protected_keys),
        "company_claims": company_claims,
    }
    return await act(
        login, csrf, lambda: update_settings(db, login, changes),
        done=back_to("/admin/settings?saved=1"),
        failed=lambda errors, status: _settings_page(request, login, status=status,
                                                     errors=errors, **changes),
    )  # fmt: skip


# --- identity verification ---------------------------------------------------------------------


async def _verification_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    impact = await db.run(lambda tx: installation.report(tx, project_id=login.project.id, days=7))
    return render(request, "admin/verification.html", login, status=status, errors=errors,
                  title="Identity verification", current="/admin/verification",
                  project=projects.project_view(login.project), modes=list(VerificationMode),
                  impact=impact, **context)  # fmt: skip


@router.get("/verification")
async def verification_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _verification_page(request, login, db)


@router.post("/verification/mode")
async def set_verification_mode(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    identity_verification: Annotated[str, Form(max_length=32)],
    csrf: CsrfField = None,
) -> Response:
    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _verification_page(request, login, db, status=status, errors=errors)

    mode = {"identity_verification": identity_verification}
    return await act(
        login, csrf, lambda: update_settings(db, login, mode),
        done=back_to("/admin/verification?saved=1"), failed=failed,
    )  # fmt: skip


@router.post("/verification/rotate")
async def rotate_secret(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    grace_hours: Annotated[str, Form(max_length=16)] = "24",
    revoke_sessions: Annotated[str | None, Form(max_length=8)] = None,
    csrf: CsrfField = None,
) -> Response:
    """POST /settings/rotate-secret; the new secret is shown on this page, once."""

    async def rotate() -> Any:
        hours = grace_hours.strip()
        seconds = int(float(hours) * 3600) if hours.replace(".", "", 1).isdigit() else -1
        wanted = {"grace_seconds": seconds, "revoke_sessions": revoke_sessions is not None}
        body = validated(RotateSecretRequest, wanted)
        return await db.transaction(
            lambda s: projects.rotate_secret(
                session=s, app_id=login.project.app_id,
                grace=timedelta(seconds=body.grace_seconds),
                revoke_sessions=body.revoke_sessions, actor=actor(login),
            )
        )  # fmt: skip

    async def shown(rotated: Any) -> Response:
        return await _verification_page(
            request, login, db, new_secret=rotated.identity_secret,
            previous_expires_at=rotated.previous_secret_expires_at,
        )  # fmt: skip

    async def failed(errors: dict[str, str], status: int) -> Response:
        errors = {"grace_hours" if k == "grace_seconds" else k: v for k, v in errors.items()}
        return await _verification_page(request, login, db, status=status, errors=errors)

    return await act(login, csrf, rotate, done=shown, failed=failed)


@router.post("/verification/check")
async def check_hash(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    user_id: Annotated[str, Form(max_length=1024)] = "",
    email: Annotated[str, Form(max_length=1024)] = "",
    user_hash: Annotated[str, Form(max_length=1024)] = "",
    csrf: CsrfField = None,
) -> Response:
    """POST /settings/check-hash: valid or invalid, and by which secret, never the secret."""
    asked = {"user_id": user_id.strip() or None, "email": email.strip() or None,
             "user_hash": user_hash.strip()}  # fmt: skip

    async def check() -> Any:
        body = validated(CheckHashRequest, asked)
        return await db.transaction(
            lambda s: projects.check_user_hash(
                session=s, app_id=login.project.app_id, user_id=body.user_id, email=body.email,
                user_hash=body.user_hash,
            )
        )  # fmt: skip

    async def answered(checked: Any) -> Response:
        return await _verification_page(request, login, db, checked=checked, asked=asked)

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _verification_page(request, login, db, status=status, errors=errors,
                                        asked=asked)  # fmt: skip

    return await act(login, csrf, check, done=answered, failed=failed)


# --- installation and refusals --------------------------------------------------------------


@router.get("/installation")
async def installation_page(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    days: Annotated[int, Query(ge=1, le=MAX_DAYS)] = 7,
) -> HTMLResponse:
    found = await db.run(lambda tx: installation.report(tx, project_id=login.project.id, days=days))
    flush = request.app.state.installation.flush_seconds
    return render(request, "admin/installation.html", login, title="Installation",
                  current="/admin/installation", report=found, days=days, flush=flush)  # fmt: skip


@router.get("/refusals")
async def refusals_page(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    cursor: Annotated[str | None, Query(max_length=20)] = None,
) -> HTMLResponse:
    page = await db.run(
        lambda tx: installation.refusals(tx, project_id=login.project.id, cursor=cursor, limit=50)
    )
    return render(request, "admin/refusals.html", login, title="Refusals",
                  current="/admin/refusals", page=page)  # fmt: skip

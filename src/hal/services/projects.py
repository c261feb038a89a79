"""Project administration: create, update, show, rotate the identity secret and check a
user_hash against it, API tokens."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import ApiToken, Project
from hal.db.queries import locked, project_by_app_id
from hal.db.types import utcnow
from hal.domain.errors import Conflict, NotFound
from hal.domain.privacy import check_retention_days
from hal.domain.projects import (
    CompanyClaims,
    TokenKind,
    accepted_secrets,
    check_app_id,
    check_stages,
    check_token_label,
    normalize_origin,
)
from hal.domain.stages import StageMode
from hal.domain.verification import (
    SignedKey,
    VerificationMode,
    matching_secret,
    signed_key,
)
from hal.schemas.team import ProjectOut
from hal.services.audit import CLI, SECRET, Actor, record_audit

DEFAULT_STAGES = ["Lead", "Qualified", "Trial", "Customer", "Churned"]


@dataclass(frozen=True)
class ProjectSettings:
    """The settable parts of a project; None leaves a setting as it is."""

    name: str | None = None
    identity_verification: VerificationMode | None = None
    stage_mode: StageMode | None = None
    stages: list[str] | None = None
    allowed_origins: list[str] | None = None
    protected_keys: list[str] | None = None
    company_claims: CompanyClaims | None = None
    # Days; 0 unsets (kept for ever).
    event_retention_days: int | None = None
    conversation_retention_days: int | None = None


def _apply(project: Project, changes: ProjectSettings) -> None:
    if changes.name is not None:
        project.name = changes.name
    if changes.identity_verification is not None:
        project.identity_verification = changes.identity_verification.value
    if changes.stage_mode is not None:
        project.stage_mode = changes.stage_mode.value
    if changes.stages is not None:
        project.stages = check_stages(changes.stages)
    if changes.allowed_origins is not None:
        project.allowed_origins = sorted({normalize_origin(o) for o in changes.allowed_origins})
    if changes.protected_keys is not None:
        project.protected_keys = sorted({key.strip() for key in changes.protected_keys if key})
    if changes.company_claims is not None:
        project.company_claims = changes.company_claims.value
    for field in ("event_retention_days", "conversation_retention_days"):
        days = getattr(changes, field)
        if days is not None:
            setattr(project, field, check_retention_days(days or None, field=field))


def new_secret() -> str:
    return secrets.token_hex(32)


async def create_project(
    *, session: AsyncSession, app_id: str | None, settings: ProjectSettings
) -> Project:
    """Create a project; its identity secret is returned once, in the caller's output."""
    app_id = check_app_id(app_id) if app_id else f"proj_{secrets.token_hex(6)}"
    if await project_by_app_id(session, app_id) is not None:
        raise Conflict("app_id_taken", f"a project with app_id {app_id!r} exists", field="app_id")
    project = Project(
        app_id=app_id,
        name=settings.name or app_id,
        identity_secret=new_secret(),
        session_secret=new_secret(),
        identity_verification=VerificationMode.ENABLED.value,
        stage_mode=StageMode.OVERWRITE.value,
        stages=list(DEFAULT_STAGES),
        allowed_origins=[],
        protected_keys=[],
    )
    _apply(project, settings)
    session.add(project)
    await session.flush()
    return project


async def get_project(*, session: AsyncSession, app_id: str) -> Project:
    project = await project_by_app_id(session, app_id)
    if project is None:
        raise NotFound("unknown_app", f"no project with app_id {app_id!r}", field="app_id")
    return project


async def update_project(
    *, session: AsyncSession, app_id: str, settings: ProjectSettings, actor: Actor = CLI
) -> Project:
    """Change a project's settings."""
    project = await get_project(session=session, app_id=app_id)
    before = describe_project(project, include_secret=False)
    _apply(project, settings)
    await session.flush()
    after = describe_project(project, include_secret=False)
    changed = {k: {"old": before[k], "new": after[k]} for k in after if before[k] != after[k]}
    if changed:
        await record_audit(
            session, project_id=project.id, actor=actor, action="project.updated", changes=changed
        )
    return project


async def rotate_secret(
    *,
    session: AsyncSession,
    app_id: str,
    grace: timedelta,
    revoke_sessions: bool = False,
    actor: Actor = CLI,
) -> Project:
    """Issue a new identity secret; the old one keeps verifying until the grace period ends.
    `revoke_sessions` also ends every widget session token of the project (they are signed
    with a session secret that is replaced)."""
    project = await get_project(session=session, app_id=app_id)
    project.previous_identity_secret = project.identity_secret
    project.previous_secret_expires_at = utcnow() + grace
    project.identity_secret = new_secret()
    if revoke_sessions:
        project.session_secret = new_secret()
    await session.flush()
    await record_audit(
        session,
        project_id=project.id,
        actor=actor,
        action="project.secret_rotated",
        changes={
            "identity_secret": SECRET,
            "grace_seconds": int(grace.total_seconds()),
            "revoke_sessions": revoke_sessions,
        },
    )
    return project


@dataclass(frozen=True)
class HashCheck:
    """Whether a user_hash is right for a value, and which secret signed it; never a secret."""

    valid: bool
    signed: SignedKey
    secret: Literal["current", "previous"] | None


async def check_user_hash(
    *,
    session: AsyncSession,
    app_id: str,
    user_id: str | None = None,
    email: str | None = None,
    user_hash: str,
) -> HashCheck:
    """Check a user_hash against the project's current secret and, during a rotation's grace
    period, the previous one, as identify would."""
    signed, value = signed_key(user_id=user_id, email=email)
    project = await get_project(session=session, app_id=app_id)
    accepted = accepted_secrets(
        project.identity_secret,
        project.previous_identity_secret,
        project.previous_secret_expires_at,
        utcnow(),
    )
    matched = matching_secret(accepted, value, user_hash)
    if matched is None:
        return HashCheck(valid=False, signed=signed, secret=None)
    return HashCheck(valid=True, signed=signed, secret="current" if matched == 0 else "previous")


def project_view(project: Project) -> ProjectOut:
    """The project's settings as the admin API and the command line show them (no secret)."""
    return ProjectOut.model_validate(project, from_attributes=True)


def describe_project(project: Project, *, include_secret: bool) -> dict[str, Any]:
    shown: dict[str, Any] = project_view(project).model_dump(mode="json")
    if include_secret:
        shown["identity_secret"] = project.identity_secret
        if project.previous_secret_expires_at is not None:
            shown["previous_secret_expires_at"] = project.previous_secret_expires_at.isoformat()
    return shown


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class IssuedToken:
    """A new API token: its row, and the token itself, which is shown this once."""

    row: ApiToken
    token: str


async def create_api_token(
    *,
    session: AsyncSession,
    app_id: str,
    kind: TokenKind = TokenKind.TEAM,
    label: str | None = None,
    actor: Actor = CLI,
) -> IssuedToken:
    """An API token for one project (team, or admin: settings and secrets too); only its hash
    is stored."""
    label = check_token_label(label)
    project = await get_project(session=session, app_id=app_id)
    token = f"hal_{secrets.token_urlsafe(32)}"
    row = ApiToken(
        project_id=project.id,
        token_hash=hash_api_token(token),
        prefix=token[:8],
        scope=TokenKind(kind).value,
        label=label,
        created_at=utcnow(),
    )
    session.add(row)
    await session.flush()
    changes: dict[str, Any] = {"scope": row.scope}
    if label is not None:
        changes["label"] = label
    await record_audit(
        session,
        project_id=project.id,
        actor=actor,
        action="token.created",
        target=str(row.id),
        changes=changes,
    )
    return IssuedToken(row, token)


async def list_api_tokens(*, session: AsyncSession, app_id: str) -> list[ApiToken]:
    """Every token of the project, revoked ones too, newest first."""
    project = await get_project(session=session, app_id=app_id)
    query = select(ApiToken).where(ApiToken.project_id == project.id)
    return list((await session.execute(query.order_by(ApiToken.id.desc()))).scalars())


async def revoke_api_token(
    *,
    session: AsyncSession,
    app_id: str,
    token: str | None = None,
    token_id: int | None = None,
    actor: Actor = CLI,
) -> ApiToken:
    """Revoke a token of this project, given itself (the command line) or its id (the admin
    API), at once: it answers 401 from then on, and the streams it opened end. Revoking a
    revoked token by its id changes nothing."""
    project = await get_project(session=session, app_id=app_id)
    query = select(ApiToken).where(ApiToken.project_id == project.id)
    if token is not None:
        query = query.where(
            ApiToken.token_hash == hash_api_token(token), ApiToken.revoked_at.is_(None)
        )
    else:
        query = query.where(ApiToken.id == token_id)
    found = (await session.execute(locked(query))).scalar_one_or_none()
    if found is None:
        field = "token" if token is not None else "token_id"
        raise NotFound("unknown_token", "no token like this in the project", field=field)
    if found.revoked_at is not None:
        return found
    found.revoked_at = utcnow()
    await session.flush()
    await record_audit(
        session, project_id=project.id, actor=actor, action="token.revoked", target=str(found.id)
    )
    return found


# A busy token writes when it was last used once a minute, not on every request.
LAST_USED_EVERY = timedelta(seconds=60)


async def project_for_api_token(
    *, session: AsyncSession, token: str
) -> tuple[Project, str, int] | None:
    """The project a token was made for, the token's scope and its id; notes the token's use
    when its last one is older than a minute (a statement more, once a minute at most)."""
    return await _grant(session, ApiToken.token_hash == hash_api_token(token))


async def project_for_api_token_id(
    *, session: AsyncSession, token_id: int
) -> tuple[Project, str, int] | None:
    """As `project_for_api_token`, for the token with this id (what a stream ticket names)."""
    return await _grant(session, ApiToken.id == token_id)


async def _grant(
    session: AsyncSession, which: ColumnElement[bool]
) -> tuple[Project, str, int] | None:
    query = (
        select(Project, ApiToken.scope, ApiToken.id, ApiToken.last_used_at)
        .join(ApiToken, ApiToken.project_id == Project.id)
        .where(which, ApiToken.revoked_at.is_(None))
    )
    row = (await session.execute(query)).first()
    if row is None:
        return None
    project, scope, token_id, last_used_at = row
    now = utcnow()
    if last_used_at is None or last_used_at < now - LAST_USED_EVERY:
        await _note_use(session, token_id=token_id, now=now)
    return project, scope, token_id


async def _note_use(session: AsyncSession, *, token_id: int, now: datetime) -> None:
    # Conditional: of processes racing on the same stale token, only the first writes.
    stale = or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - LAST_USED_EVERY)
    await session.execute(
        update(ApiToken)
        .where(ApiToken.id == token_id, stale)
        .values(last_used_at=now)
        .execution_options(synchronize_session=False)
    )

"""What every widget call starts with: the project, the visitor, and who the caller has proven
to be (SPEC "Widget routes", "Identity verification")."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, lock_key
from hal.db.models import Contact, Project, Visitor
from hal.db.queries import (
    contact_for_update,
    insert_ignoring_conflict,
    project_by_app_id,
    visitor_for_update,
)
from hal.domain.errors import Forbidden, NotFound, Unauthorized
from hal.domain.limits import Limits
from hal.domain.projects import origin_allowed
from hal.domain.sessions import issue_session_token, read_session_token
from hal.domain.validation import check_identifier
from hal.domain.verification import Proof, VerificationMode
from hal.services.admission import Admission


@dataclass(frozen=True)
class Caller:
    """Where a widget call comes from (the browser's Origin, its bearer token) and the abuse
    limits it is held to."""

    origin: str | None = None
    bearer: str | None = None
    admission: Admission | None = None


async def load_project(*, session: AsyncSession, app_id: str, caller: Caller) -> Project:
    """The project addressed by `app_id`, refusing browsers from origins it does not allow."""
    project = await project_by_app_id(session, app_id)
    if project is None:
        raise NotFound("unknown_app", f"no project with app_id {app_id!r}", field="app_id")
    if not origin_allowed(caller.origin, project.allowed_origins):
        raise Forbidden(
            "origin_not_allowed",
            f"origin {caller.origin!r} is not an allowed origin of this project",
            field="origin",
        )
    if caller.admission is not None:
        await caller.admission.project_call(project.app_id)
    return project


async def load_visitor(
    *,
    session: AsyncSession,
    project: Project,
    visitor_id: str,
    limits: Limits,
    now: datetime,
    caller: Caller,
) -> Visitor:
    """The visitor row, created on first sight and locked for this transaction."""
    check_identifier(visitor_id, field="visitor_id", limits=limits)
    if caller.admission is not None:
        await caller.admission.visitor_call(project.app_id, visitor_id)
    created = await insert_ignoring_conflict(
        session,
        Visitor,
        [{"project_id": project.id, "visitor_key": visitor_id, "properties": {}}],
        ["project_id", "visitor_key"],
    )
    if created and caller.admission is not None:
        await caller.admission.new_visitor(project.app_id)
    visitor = await visitor_for_update(session, project.id, visitor_id)
    assert visitor is not None
    visitor.last_seen_at = now
    return visitor


def session_contact_id(project: Project, visitor: Visitor, caller: Caller) -> int | None:
    """The contact the caller's session token vouches for (None if absent or not valid)."""
    if not caller.bearer:
        return None
    return read_session_token(
        secret=project.session_secret,
        token=caller.bearer,
        app_id=project.app_id,
        visitor_id=visitor.visitor_key,
    )


def require_session(
    *,
    project: Project,
    visitor: Visitor,
    bound: Contact | None,
    caller: Caller,
    proof: Proof | None = None,
) -> int | None:
    """A visitor bound to a verified contact needs its session token or a valid hash.

    Returns the contact the session token vouches for.
    """
    vouched = session_contact_id(project, visitor, caller)
    if (
        bound is not None
        and bound.verified
        and project.identity_verification != VerificationMode.DISABLED
        and vouched != bound.id
        and not (proof is not None and proof.verified)
    ):
        reason = "is missing" if not caller.bearer else "is invalid, expired or not this visitor's"
        raise Unauthorized(
            "session_token_required",
            "this visitor is bound to a verified contact: send its session_token as "
            f"'Authorization: Bearer ...' or a valid user_hash (the token {reason})",
            field="authorization",
        )
    return vouched


def new_session_token(
    *, project: Project, visitor: Visitor, contact: Contact, now: datetime, ttl: timedelta
) -> str:
    return issue_session_token(
        secret=project.session_secret,
        app_id=project.app_id,
        visitor_id=visitor.visitor_key,
        contact_id=contact.id,
        now=now,
        ttl=ttl,
    )


@dataclass(frozen=True)
class WidgetCall:
    """A widget call after the common checks: project, locked visitor, its contact if any."""

    project: Project
    visitor: Visitor
    contact: Contact | None


async def open_widget_call(
    *,
    db: Database,
    session: AsyncSession,
    project: Project,
    visitor_id: str,
    caller: Caller,
    limits: Limits,
    now: datetime,
) -> WidgetCall:
    """Lock and load the visitor and its contact, and enforce the session rule for verified
    visitors. The project comes from `load_project`."""
    await db.lock(session, [lock_key(project.id, "visitor", visitor_id)])
    visitor = await load_visitor(
        session=session,
        project=project,
        visitor_id=visitor_id,
        limits=limits,
        now=now,
        caller=caller,
    )
    contact = await contact_for_update(session, visitor.contact_id) if visitor.contact_id else None
    require_session(project=project, visitor=visitor, bound=contact, caller=caller)
    return WidgetCall(project=project, visitor=visitor, contact=contact)


async def start_widget_call(
    *,
    db: Database,
    session: AsyncSession,
    app_id: str,
    visitor_id: str,
    caller: Caller,
    limits: Limits,
    now: datetime,
) -> WidgetCall:
    """`load_project`, then `open_widget_call`: the start of every visitor-scoped write."""
    project = await load_project(session=session, app_id=app_id, caller=caller)
    return await open_widget_call(
        db=db,
        session=session,
        project=project,
        visitor_id=visitor_id,
        caller=caller,
        limits=limits,
        now=now,
    )

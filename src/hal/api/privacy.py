"""Privacy routes under /api/projects/{app_id}: erase, export and merge contacts, lift a
suppression (team token); erase a person by email or user_id, list the suppressions, read the
audit log (admin token)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from hal.api.body import StrictJSONRoute
from hal.api.deps import (
    AdminProjectDep,
    Cursor,
    DatabaseDep,
    Limit,
    RowId,
    TeamProjectDep,
    TokenActorDep,
)
from hal.api.errors import error_responses
from hal.api.presenters import (
    company_events_out,
    company_out,
    contact_summary,
    conversation_out,
)
from hal.schemas.privacy import (
    AuditActor,
    AuditEntryOut,
    AuditPage,
    ContactExport,
    ErasedOut,
    ErasureRequest,
    MergeMoves,
    MergeOut,
    MergeRequest,
    SuppressedPersonOut,
    SuppressionLiftedOut,
    SuppressionOut,
    SuppressionPage,
    VisitorExport,
)
from hal.services import erasure, export, merge
from hal.services.audit import audit_page
from hal.services.suppression import lift_suppression, suppression_page

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["privacy"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


@router.delete("/contacts/{contact_id}", response_model=ErasedOut, responses=error_responses(410))
async def erase_contact(
    contact_id: RowId,
    project: TeamProjectDep,
    db: DatabaseDep,
    actor: TokenActorDep,
    suppress: bool = False,
) -> ErasedOut:
    """Erase the person: contact, visitors, events, conversations, links, and every copy in
    the change log and the webhook delivery log. `suppress=true` refuses their user_id and
    email from then on (403 `suppressed`) until the suppression is lifted."""
    erased = await erasure.erase(
        db,
        project=project,
        person=erasure.Person(contact_id=contact_id),
        suppress=suppress,
        actor=actor,
    )
    return erased_out(erased)


@router.post("/erasures", response_model=ErasedOut)
async def erase_person(
    body: ErasureRequest, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> ErasedOut:
    """Erase the person who has this email (or an email merged into them) or this user_id
    (exactly one), as DELETE /contacts/{id} does; 404 `unknown_contact` names the field when
    no one has it."""
    person = erasure.Person(user_id=body.user_id, email=body.email)
    erased = await erasure.erase(
        db, project=project, person=person, suppress=body.suppress, actor=actor
    )
    return erased_out(erased)


def erased_out(erased: erasure.Erased) -> ErasedOut:
    started = erased.started
    return ErasedOut(
        id=started.contact_id,
        erased=True,
        deleted_rows=erased.deleted_rows,
        suppression=SuppressionOut(user_id_hash=started.user_id_hash, email_hash=started.email_hash)
        if started.suppressed
        else None,
    )


@router.get(
    "/contacts/{contact_id}/export",
    response_model=ContactExport,
    responses=error_responses(410),
)
async def export_contact(
    contact_id: RowId, project: TeamProjectDep, db: DatabaseDep
) -> ContactExport:
    """Everything held about the person, as one JSON document."""
    data = await db.transaction(
        lambda s: export.export_contact(session=s, project=project, contact_id=contact_id)
    )
    return ContactExport(
        exported_at=data.exported_at,
        contact=contact_summary(data.contact),
        visitors=[
            VisitorExport(
                visitor_id=v.visitor_key,
                properties=v.properties,
                active_company_id=data.visitor_companies[v.active_company_id].external_id
                if v.active_company_id in data.visitor_companies
                else None,
                verified=v.verified,
                created_at=v.created_at,
                last_seen_at=v.last_seen_at,
            )
            for v in data.visitors
        ],
        companies=[company_out(c) for c in data.companies],
        events=company_events_out(data.events, data.event_companies),
        conversations=[conversation_out(c, messages) for c, messages in data.conversations],
    )


@router.post("/contacts/merge", response_model=MergeOut, responses=error_responses(409, 410))
async def merge_contacts(
    body: MergeRequest, project: TeamProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> MergeOut:
    """Merge `from` into `into` (`preview`: what would move, without writing)."""
    result = await db.run(
        lambda tx: merge.merge_contacts(
            tx,
            project=project,
            from_id=body.from_,
            into_id=body.into,
            preview=body.preview,
            actor=actor,
            confirm_verified_pair=body.confirm_verified_pair,
        )
    )
    return merge_out(result)


def merge_out(result: merge.MergeResult) -> MergeOut:
    return MergeOut(
        from_=result.from_id,
        into=result.into.id,
        preview=result.preview,
        verified_pair=result.verified_pair,
        contact=contact_summary(result.into),
        changed=list(result.changed),
        moves=MergeMoves(
            visitors=result.visitors,
            events=result.events,
            conversations=result.conversations,
            companies=result.companies,
        ),
    )


@router.get("/suppressions", response_model=SuppressionPage)
async def suppressions(
    project: AdminProjectDep, db: DatabaseDep, cursor: Cursor = None, limit: Limit = 50
) -> SuppressionPage:
    """The people erased with `suppress`, newest first: the hashes of their keys (any of them
    lifts the suppression), never the keys."""
    page = await db.run(
        lambda tx: suppression_page(tx, project_id=project.id, cursor=cursor, limit=limit)
    )
    return SuppressionPage(
        items=[SuppressedPersonOut.model_validate(p, from_attributes=True) for p in page.items],
        next_cursor=page.next_cursor,
    )


@router.delete("/suppressions/{hash}", response_model=SuppressionLiftedOut)
async def lift(
    hash: Annotated[str, Path(max_length=64)],
    project: TeamProjectDep,
    db: DatabaseDep,
    actor: TokenActorDep,
) -> SuppressionLiftedOut:
    """Lift a suppression (by the hash of its user_id or of its email): the person's keys may
    identify again."""

    await db.run(lambda tx: lift_suppression(tx, project_id=project.id, hash=hash, actor=actor))
    return SuppressionLiftedOut(lifted=True)


@router.get("/audit", response_model=AuditPage)
async def audit_log(
    project: AdminProjectDep,
    db: DatabaseDep,
    cursor: Cursor = None,
    limit: Limit = 50,
    actor: Annotated[
        str | None,
        Query(max_length=40, description='"token:3", "agent:5", "agent", "token", "cli"'),
    ] = None,
    action: Annotated[
        str | None, Query(max_length=64, description='exact: "agent.created"')
    ] = None,
    since: Annotated[
        str | None, Query(max_length=40, description="ISO date or date-time (UTC without offset)")
    ] = None,
    until: Annotated[
        str | None, Query(max_length=40, description="exclusive; a date alone keeps its whole day")
    ] = None,
) -> AuditPage:
    """Every agent and admin write, newest first, paged by cursor; filtered by who, what and
    when (the cursor of a filtered page goes with the same filter)."""
    page = await db.run(
        lambda tx: audit_page(
            tx, project_id=project.id, cursor=cursor, limit=limit, actor=actor, action=action,
            since=since, until=until,
        )
    )  # fmt: skip
    return AuditPage(
        items=[
            AuditEntryOut(
                id=row.id,
                actor=AuditActor(type=row.actor_type, id=row.actor_id),
                action=row.action,
                target=row.target,
                changes=row.changes,
                created_at=row.created_at,
            )
            for row in page.items
        ],
        next_cursor=page.next_cursor,
    )

"""POST /api/widget/identify: match or create the contact, merge, bind the visitor, link the
company, all in the caller's one transaction (SPEC "Matching", steps 1-6)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, lock_key
from hal.db.models import Company, Contact, ContactCompany, Event, Project, Visitor
from hal.db.queries import contact_by_email, contact_by_user_id, linked_company_ids
from hal.db.types import utcnow
from hal.domain.errors import InvalidInput
from hal.domain.limits import Limits
from hal.domain.matching import ContactRef, IdentifyPlan, plan_identify
from hal.domain.stages import StageDecision, StageMode, StageSource
from hal.domain.validation import (
    Email,
    check_identifier,
    check_metadata,
    check_protected_keys,
    check_text,
    merge_metadata,
    parse_email,
)
from hal.domain.verification import Claims, Proof, VerificationMode, resolve_proof
from hal.schemas import CompanyInput, IdentifyRequest
from hal.services.companies import (
    company_for_update,
    link_contact,
    update_company,
    upsert_companies,
    write_stage,
)
from hal.services.conversations import attach_visitor_conversations, move_conversations
from hal.services.projects import accepted_secrets
from hal.services.visitors import (
    Caller,
    load_project,
    load_visitor,
    new_session_token,
    require_session,
)


@dataclass(frozen=True)
class IdentifyResult:
    visitor: Visitor
    contact: Contact
    active_company: Company | None
    company_ids: list[str]
    session_token: str
    warnings: tuple[str, ...]
    stage: StageDecision | None
    stage_mode: StageMode | None


@dataclass(frozen=True)
class _Checked:
    """The request after every limit and signature check, before any read or write."""

    claims: Claims
    proof: Proof
    user_id: str | None
    email: Email | None
    metadata: dict[str, Any] | None
    company: CompanyInput | None
    company_ids: list[str]
    stage_mode: StageMode


def _check(request: IdentifyRequest, project: Project, limits: Limits, now: datetime) -> _Checked:
    # Checked before the signature, so a malformed visitor_id is the error a client sees first.
    check_identifier(request.visitor_id, field="visitor_id", limits=limits)
    mode = VerificationMode(project.identity_verification)
    claims, proof = resolve_proof(
        mode=mode,
        secrets=accepted_secrets(project, now),
        user_id=request.user_id,
        email=request.email,
        name=request.name,
        user_hash=request.user_hash,
        identity_token=request.identity_token,
    )
    if claims.user_id is None and claims.email is None:
        raise InvalidInput(
            "missing_identity", "identify needs a user_id or an email (or both)", field="user_id"
        )
    user_id = (
        check_identifier(claims.user_id, field="user_id", limits=limits)
        if claims.user_id is not None
        else None
    )
    email = parse_email(claims.email, limits=limits) if claims.email is not None else None
    if claims.name is not None:
        check_text(claims.name, field="name", max_length=limits.max_name_length)

    protected = frozenset(project.protected_keys)
    metadata = None
    if request.metadata:
        metadata = check_metadata(request.metadata, field="metadata", limits=limits)
        check_protected_keys(metadata, protected=protected, signed=proof.metadata, field="metadata")
    if proof.metadata:
        metadata = {
            **(metadata or {}),
            **check_metadata(proof.metadata, field="identity_token", limits=limits),
        }
    company = request.company
    if company is not None:
        check_identifier(company.id, field="company.id", limits=limits)
        if company.metadata:
            check_metadata(company.metadata, field="company.metadata", limits=limits)
            check_protected_keys(
                company.metadata, protected=protected, signed={}, field="company.metadata"
            )
    company_ids = list(request.company_ids or [])
    if len(company_ids) > limits.max_company_ids:
        raise InvalidInput(
            "too_many_items",
            f"company_ids has more than {limits.max_company_ids} ids",
            field="company_ids",
        )
    for index, company_id in enumerate(company_ids):
        check_identifier(company_id, field=f"company_ids[{index}]", limits=limits)
    return _Checked(
        claims=claims,
        proof=proof,
        user_id=user_id,
        email=email,
        metadata=metadata,
        company=company,
        company_ids=company_ids,
        stage_mode=request.stage_mode or StageMode(project.stage_mode),
    )


def _ref(contact: Contact | None) -> ContactRef | None:
    if contact is None:
        return None
    return ContactRef(
        id=contact.id,
        user_id=contact.user_id,
        email=contact.email_normalized,
        verified=contact.verified,
    )


async def _merge_lead(session: AsyncSession, *, lead: Contact, into: Contact) -> None:
    """Move a lead's timeline, links and visitors to `into`, keep its metadata where `into`
    has none, and delete it."""
    await session.execute(
        update(Event).where(Event.contact_id == lead.id).values(contact_id=into.id)
    )
    await session.execute(
        update(Visitor).where(Visitor.contact_id == lead.id).values(contact_id=into.id)
    )
    await move_conversations(session, source=lead, target=into)
    lead_companies = await session.execute(
        select(ContactCompany.company_id).where(ContactCompany.contact_id == lead.id)
    )
    await link_contact(session=session, contact_id=into.id, company_ids=lead_companies.scalars())
    into.metadata_ = {**lead.metadata_, **into.metadata_}
    into.name = into.name or lead.name
    into.verified = into.verified or lead.verified
    await session.execute(delete(ContactCompany).where(ContactCompany.contact_id == lead.id))
    await session.delete(lead)
    await session.flush()  # frees the lead's email before `into` takes it


async def _apply_plan(
    session: AsyncSession,
    *,
    project: Project,
    plan: IdentifyPlan,
    checked: _Checked,
    by_email: Contact | None,
    now: datetime,
) -> Contact:
    contact: Contact
    if plan.target is None:
        contact = Contact(project_id=project.id, metadata_={}, verified=False, created_at=now)
        session.add(contact)
    else:
        found = await session.get(Contact, plan.target.id)
        assert found is not None
        contact = found
    if plan.claim_user_id or plan.target is None:
        contact.user_id = checked.user_id
    if plan.merge_lead is not None:
        assert by_email is not None and by_email.id == plan.merge_lead.id
        if plan.target is None:
            await session.flush()  # the new contact needs its id before records move to it
        await _merge_lead(session, lead=by_email, into=contact)
    if plan.set_email and checked.email is not None:
        contact.email = checked.email.display
        contact.email_normalized = checked.email.normalized
    if plan.mark_verified:
        contact.verified = True
    if checked.claims.name is not None:
        contact.name = checked.claims.name
    contact.last_seen_at = now
    await session.flush()
    return contact


async def _bind_visitor(
    session: AsyncSession, *, visitor: Visitor, contact: Contact, metadata: dict[str, Any] | None
) -> None:
    """Bind the visitor. An anonymous visitor's properties and events move to the contact; a
    visitor bound to someone else is re-bound and nothing moves (account switch)."""
    if visitor.contact_id is None:
        contact.metadata_ = merge_metadata(contact.metadata_, visitor.properties)
        visitor.properties = {}
        await session.execute(
            update(Event)
            .where(Event.visitor_id == visitor.id, Event.contact_id.is_(None))
            .values(contact_id=contact.id)
        )
        await attach_visitor_conversations(session, visitor=visitor, contact=contact)
    elif visitor.contact_id != contact.id:
        visitor.active_company_id = None  # the previous user's company is not this user's
    visitor.contact_id = contact.id
    if metadata:
        contact.metadata_ = merge_metadata(contact.metadata_, metadata)


async def _apply_companies(
    session: AsyncSession,
    *,
    project: Project,
    request: IdentifyRequest,
    checked: _Checked,
    visitor: Visitor,
    contact: Contact,
    now: datetime,
) -> StageDecision | None:
    company_input = checked.company
    ids = list(checked.company_ids)
    if company_input is not None:
        ids.append(company_input.id)
    row_ids = await upsert_companies(session=session, project=project, external_ids=ids)
    await link_contact(session=session, contact_id=contact.id, company_ids=row_ids.values())
    decision = None
    if company_input is not None:
        company = await company_for_update(session, row_ids[company_input.id])
        update_company(company, name=company_input.name, metadata=company_input.metadata)
        if company_input.stage is not None:
            decision = await write_stage(
                session=session,
                project=project,
                company=company,
                stage=company_input.stage,
                mode=checked.stage_mode,
                source=StageSource.WIDGET,
                now=now,
                contact_id=contact.id,
                field="company.stage",
            )
        visitor.active_company_id = company.id
    elif "company" in request.model_fields_set:
        visitor.active_company_id = None  # "company": null clears the active company
    return decision


async def identify(
    *,
    db: Database,
    session: AsyncSession,
    request: IdentifyRequest,
    caller: Caller,
    limits: Limits,
    session_ttl: timedelta,
) -> IdentifyResult:
    """Identify the visitor as a contact, in one race-safe transaction."""
    now = utcnow()
    project = await load_project(session=session, app_id=request.app_id, caller=caller)
    checked = _check(request, project, limits, now)

    # Serialize identifies that touch the same person (PostgreSQL; SQLite has one writer).
    keys = [lock_key(project.id, "visitor", request.visitor_id)]
    if checked.user_id is not None:
        keys.append(lock_key(project.id, "user_id", checked.user_id))
    if checked.email is not None:
        keys.append(lock_key(project.id, "email", checked.email.normalized))
    await db.lock(session, keys)

    visitor = await load_visitor(
        session=session,
        project=project,
        visitor_id=request.visitor_id,
        limits=limits,
        now=now,
        caller=caller,
    )
    bound = await session.get(Contact, visitor.contact_id) if visitor.contact_id else None
    vouched = require_session(
        project=project, visitor=visitor, bound=bound, caller=caller, proof=checked.proof
    )

    by_user_id = (
        await contact_by_user_id(session, project.id, checked.user_id, for_update=True)
        if checked.user_id is not None
        else None
    )
    by_email = (
        await contact_by_email(session, project.id, checked.email.normalized, for_update=True)
        if checked.email is not None
        else None
    )
    plan = plan_identify(
        mode=VerificationMode(project.identity_verification),
        user_id=checked.user_id,
        email=checked.email.normalized if checked.email else None,
        proof=checked.proof,
        by_user_id=_ref(by_user_id),
        by_email=_ref(by_email),
        session_contact_id=vouched,
    )
    contact = await _apply_plan(
        session, project=project, plan=plan, checked=checked, by_email=by_email, now=now
    )
    await _bind_visitor(session, visitor=visitor, contact=contact, metadata=checked.metadata)
    decision = await _apply_companies(
        session,
        project=project,
        request=request,
        checked=checked,
        visitor=visitor,
        contact=contact,
        now=now,
    )
    await session.flush()
    active = (
        await session.get(Company, visitor.active_company_id) if visitor.active_company_id else None
    )
    return IdentifyResult(
        visitor=visitor,
        contact=contact,
        active_company=active,
        company_ids=await linked_company_ids(session, contact.id),
        session_token=new_session_token(
            project=project, visitor=visitor, contact=contact, now=now, ttl=session_ttl
        ),
        warnings=plan.warnings,
        stage=decision,
        stage_mode=checked.stage_mode if decision is not None else None,
    )

"""The widget's CRM writes: track, set-stage, set-deal (SPEC "track", "set-stage and set-deal").

Each resolves its company with one rule (`hal.domain.crm.resolve_company`) and writes in the
caller's one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, lock_key
from hal.db.models import Company, Contact, Deal, Event, Project
from hal.db.queries import linked_companies
from hal.db.types import utcnow
from hal.domain.crm import (
    DealStatus,
    EventScope,
    changed_fields,
    check_amount,
    check_close_date,
    check_currency,
    event_time,
    resolve_company,
)
from hal.domain.errors import Conflict
from hal.domain.limits import Limits
from hal.domain.stages import StageDecision, StageMode, StageSource
from hal.domain.validation import (
    check_identifier,
    check_metadata,
    check_text,
    merge_metadata,
)
from hal.schemas import SetDealRequest, SetStageRequest, TrackRequest
from hal.services.companies import company_for_update, write_stage
from hal.services.visitors import Caller, WidgetCall, start_widget_call


async def _target_company(
    session: AsyncSession, call: WidgetCall, requested: str | None, limits: Limits
) -> Company:
    """The company a company-scoped call writes to, locked for this transaction."""
    if requested is not None:
        check_identifier(requested, field="company_id", limits=limits)
    contact_id = call.contact.id if call.contact is not None else None
    companies = await linked_companies(session, contact_id) if contact_id is not None else []
    company_id = resolve_company(
        requested=requested,
        linked={company.external_id: company.id for company in companies},
        active=call.visitor.active_company_id,
    )
    return await company_for_update(session, company_id)


def _require_contact(call: WidgetCall) -> Contact:
    if call.contact is None:
        raise Conflict(
            "not_identified",
            "this visitor is anonymous: call identify before writing CRM facts",
            field="visitor_id",
        )
    return call.contact


@dataclass(frozen=True)
class TrackResult:
    event: Event
    company: Company | None
    duplicate: bool


async def _stored_event(session: AsyncSession, project: Project, event_id: str) -> Event | None:
    query = select(Event).where(Event.project_id == project.id, Event.event_key == event_id)
    return (await session.execute(query)).scalar_one_or_none()


async def track(
    *, db: Database, session: AsyncSession, request: TrackRequest, caller: Caller, limits: Limits
) -> TrackResult:
    """Record a milestone on the contact (or anonymous visitor) or on a company."""
    received = utcnow()
    check_text(request.event, field="event", max_length=limits.max_event_name_length)
    properties = check_metadata(request.properties or {}, field="properties", limits=limits)
    occurred = event_time(
        occurred_at=request.occurred_at, sent_at=request.sent_at, received_at=received
    )
    if request.event_id is not None:
        check_identifier(request.event_id, field="event_id", limits=limits)
    call = await start_widget_call(
        db=db, session=session, app_id=request.app_id, visitor_id=request.visitor_id,
        caller=caller, limits=limits, now=received,
    )  # fmt: skip
    if request.event_id is not None:
        # Concurrent repeats of one event_id wait here; the first one stores, the rest find it.
        await db.lock(session, [lock_key(call.project.id, "event", request.event_id)])
        stored = await _stored_event(session, call.project, request.event_id)
        if stored is not None:
            company = await session.get(Company, stored.company_id) if stored.company_id else None
            return TrackResult(event=stored, company=company, duplicate=True)

    scope = request.scope or (
        EventScope.COMPANY if request.company_id is not None else EventScope.CONTACT
    )
    company = None
    if scope is EventScope.COMPANY:
        company = await _target_company(session, call, request.company_id, limits)
    event = Event(
        project_id=call.project.id,
        contact_id=call.contact.id if call.contact is not None else None,
        visitor_id=call.visitor.id,
        company_id=company.id if company is not None else None,
        scope=scope.value,
        name=request.event,
        properties=properties,
        event_key=request.event_id,
        occurred_at=occurred,
        received_at=received,
    )
    session.add(event)
    await session.flush()
    return TrackResult(event=event, company=company, duplicate=False)


@dataclass(frozen=True)
class SetStageResult:
    company: Company
    decision: StageDecision
    mode: StageMode


async def set_stage(
    *,
    db: Database,
    session: AsyncSession,
    request: SetStageRequest,
    caller: Caller,
    limits: Limits,
) -> SetStageResult:
    """Write the company's stage under the stage mode; a skipped write is not an error."""
    now = utcnow()
    check_text(request.stage, field="stage", max_length=limits.max_name_length)
    call = await start_widget_call(
        db=db, session=session, app_id=request.app_id, visitor_id=request.visitor_id,
        caller=caller, limits=limits, now=now,
    )  # fmt: skip
    contact = _require_contact(call)
    company = await _target_company(session, call, request.company_id, limits)
    mode = request.stage_mode or StageMode(call.project.stage_mode)
    decision = await write_stage(
        session=session,
        project=call.project,
        company=company,
        stage=request.stage,
        mode=mode,
        source=StageSource.WIDGET,
        now=now,
        contact_id=contact.id,
    )
    await session.flush()
    return SetStageResult(company=company, decision=decision, mode=mode)


@dataclass(frozen=True)
class SetDealResult:
    company: Company
    deal: Deal
    created: bool
    changed: list[str]


def _deal_values(request: SetDealRequest) -> dict[str, Any]:
    deal = request.deal
    values: dict[str, Any] = {}
    if deal.name is not None:
        values["name"] = deal.name
    if deal.amount is not None:
        values["amount"] = check_amount(deal.amount)
    if deal.currency is not None:
        values["currency"] = check_currency(deal.currency)
    if deal.stage is not None:
        values["stage"] = deal.stage
    if deal.status is not None:
        values["status"] = deal.status.value
    if deal.close_date is not None:
        values["close_date"] = check_close_date(deal.close_date)
    return values


async def set_deal(
    *,
    db: Database,
    session: AsyncSession,
    request: SetDealRequest,
    caller: Caller,
    limits: Limits,
) -> SetDealResult:
    """Create or update a deal of the company by its id; each change appends `deal-updated`."""
    now = utcnow()
    check_identifier(request.deal.id, field="deal.id", limits=limits)
    values = _deal_values(request)
    metadata = (
        check_metadata(request.deal.metadata, field="deal.metadata", limits=limits)
        if request.deal.metadata
        else None
    )
    call = await start_widget_call(
        db=db, session=session, app_id=request.app_id, visitor_id=request.visitor_id,
        caller=caller, limits=limits, now=now,
    )  # fmt: skip
    contact = _require_contact(call)
    company = await _target_company(session, call, request.company_id, limits)
    # The company row is locked, so one deal id is created once even under concurrency.
    query = select(Deal).where(Deal.company_id == company.id, Deal.external_id == request.deal.id)
    deal = (await session.execute(query)).scalar_one_or_none()
    created = deal is None
    if deal is None:
        deal = Deal(
            company_id=company.id,
            external_id=request.deal.id,
            status=DealStatus.OPEN.value,
            metadata_={},
            created_at=now,
        )
        session.add(deal)
    current = {key: getattr(deal, key) for key in values}
    changed = changed_fields(current, values)
    for key in changed:
        setattr(deal, key, values[key])
    if metadata:
        merged = merge_metadata(deal.metadata_, metadata)
        if merged != deal.metadata_:
            deal.metadata_ = merged
            changed.append("metadata")
    if created or changed:
        deal.updated_at = now
        session.add(
            Event(
                project_id=call.project.id,
                contact_id=contact.id,
                visitor_id=call.visitor.id,
                company_id=company.id,
                scope=EventScope.COMPANY.value,
                name="deal-updated",
                properties={
                    "deal_id": request.deal.id,
                    "created": created,
                    "changed": changed,
                    "stage": values.get("stage", deal.stage),
                    "status": values.get("status", deal.status),
                },
                occurred_at=now,
                received_at=now,
            )
        )
    await session.flush()
    return SetDealResult(company=company, deal=deal, created=created, changed=changed)

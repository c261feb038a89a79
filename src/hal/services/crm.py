"""The widget's CRM writes: track, set-stage, set-deal (README "CRM writes").

Each resolves its company with one rule (`hal.domain.crm.resolve_company`), may touch it only
as `hal.domain.access` allows, and writes in the caller's one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from hal.db.engine import Tx
from hal.db.store.base import CompanyRow
from hal.db.store.companies import (
    company_for_update,
    deal_of,
    linked_companies,
    save_deal,
)
from hal.db.store.timeline import add_event, track_event
from hal.domain.changes import ChangeType
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
from hal.domain.limits import Limits
from hal.domain.stages import StageDecision, StageMode, check_stage
from hal.domain.validation import check_identifier, check_metadata, check_text, merge_metadata
from hal.schemas import (
    EventOut,
    SetDealFields,
    SetDealRequest,
    SetStageFields,
    SetStageRequest,
    TrackFields,
    TrackRequest,
)
from hal.services.change_data import deal_view
from hal.services.stages import decide_stage, stage_changed, write_company_and_stage
from hal.services.widget_call import Caller, WidgetCall, open_widget_call


async def _target_company(
    call: WidgetCall, requested: str | None, limits: Limits, *, lock: bool
) -> CompanyRow:
    """The company a company-scoped call writes to, if this call may touch it."""
    if requested is not None:
        check_identifier(requested, field="company_id", limits=limits)
    contact = call.contact
    linked = await linked_companies(call.tx, contact.id) if contact is not None else []
    row_id = resolve_company(
        requested=requested,
        linked={company.external_id: company.id for company in linked},
        active=call.active_company_id,
    )
    company = next(c for c in linked if c.id == row_id)
    if lock:
        company = await company_for_update(call.tx, company.id)
    call.check_company(company)
    return company


@dataclass(frozen=True)
class TrackResult:
    event_row_id: int
    event: EventOut | None  # None for a repeat: its id only is answered
    duplicate: bool


async def track(tx: Tx, *, request: TrackRequest, caller: Caller, limits: Limits) -> TrackResult:
    """Record a milestone on the contact (or anonymous visitor) or on a company."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    return await write_track(call, request, limits)


async def write_track(call: WidgetCall, request: TrackFields, limits: Limits) -> TrackResult:
    """Track's rules and write for an opened call (a widget visitor's, or the team's)."""
    tx = call.tx
    check_text(request.event, field="event", max_length=limits.max_event_name_length)
    properties = check_metadata(request.properties or {}, field="properties", limits=limits)
    occurred = event_time(
        occurred_at=request.occurred_at, sent_at=request.sent_at, received_at=tx.now
    )
    if request.event_id is not None:
        check_identifier(request.event_id, field="event_id", limits=limits)
    scope = request.scope or (
        EventScope.COMPANY if request.company_id is not None else EventScope.CONTACT
    )
    company = None
    if scope is EventScope.COMPANY:
        company = await _target_company(call, request.company_id, limits, lock=False)
    else:
        call.check_contact_write()
    contact_id = call.contact.id if call.contact is not None else None
    values = {
        "project_id": call.project.id,
        "contact_id": contact_id,
        "visitor_row_id": call.visitor_row_id,
        "company_id": company.id if company is not None else None,
        "scope": scope.value,
        "name": request.event,
        "properties": properties,
        "event_key": request.event_id,
        "event_owner": call.event_owner if request.event_id is not None else None,
        "occurred_at": occurred,
    }
    event_row_id, duplicate = await track_event(tx, values)
    if duplicate:
        return TrackResult(event_row_id, None, True)
    event = EventOut(
        id=event_row_id,
        name=request.event,
        scope=scope,
        properties=properties,
        occurred_at=occurred,
        received_at=tx.now,
        event_id=request.event_id,
        contact_id=contact_id,
        company_id=company.external_id if company is not None else None,
    )
    tx.record(
        call.project.id,
        ChangeType.EVENT_TRACKED,
        event.model_dump(mode="json"),
        visitor_row_id=call.visitor_row_id if contact_id is None else None,
    )
    return TrackResult(event_row_id, event, False)


@dataclass(frozen=True)
class SetStageResult:
    company: CompanyRow
    decision: StageDecision
    mode: StageMode


async def set_stage(
    tx: Tx, *, request: SetStageRequest, caller: Caller, limits: Limits
) -> SetStageResult:
    """Write the company's stage under the stage mode; a skipped write is not an error."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    return await write_set_stage(call, request, limits)


async def write_set_stage(
    call: WidgetCall, request: SetStageFields, limits: Limits
) -> SetStageResult:
    """Set-stage's rules and write for an opened call."""
    tx = call.tx
    check_text(request.stage, field="stage", max_length=limits.max_name_length)
    mode = request.stage_mode or call.project.stage_mode
    check_stage(mode=mode, new=request.stage, pipeline=call.project.stages)
    contact = call.require_contact()
    company = await _target_company(call, request.company_id, limits, lock=True)
    stage = decide_stage(
        company,
        stage=request.stage,
        mode=mode,
        source=call.stage_source,
        pipeline=call.project.stages,
    )
    values = {"version": company.version + 1} if stage.decision.applied else {}
    company = await write_company_and_stage(
        tx,
        project_id=call.project.id,
        company=company,
        values=values,
        stage=stage,
        contact_id=contact.id,
    )
    stage_changed(tx, project_id=call.project.id, company=company, stage=stage)
    decision = stage.decision
    return SetStageResult(company=company, decision=decision, mode=mode)


@dataclass(frozen=True)
class SetDealResult:
    company: CompanyRow
    deal: Any  # the deal row as stored
    created: bool
    changed: list[str]


def _deal_values(request: SetDealFields) -> dict[str, Any]:
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
    tx: Tx, *, request: SetDealRequest, caller: Caller, limits: Limits
) -> SetDealResult:
    """Create or update a deal of the company by its id; each change appends `deal-updated`."""
    call = await open_widget_call(
        tx, app_id=request.app_id, visitor_id=request.visitor_id, caller=caller, limits=limits
    )
    return await write_set_deal(call, request, limits)


async def write_set_deal(call: WidgetCall, request: SetDealFields, limits: Limits) -> SetDealResult:
    """Set-deal's rules and write for an opened call."""
    tx = call.tx
    check_identifier(request.deal.id, field="deal.id", limits=limits)
    values = _deal_values(request)
    metadata = (
        check_metadata(request.deal.metadata, field="deal.metadata", limits=limits)
        if request.deal.metadata
        else None
    )
    contact = call.require_contact()
    company = await _target_company(call, request.company_id, limits, lock=True)
    # The company row is locked, so one deal id is created once even under concurrency.
    current = await deal_of(tx, company_id=company.id, deal_id=request.deal.id)
    created = current is None
    before = {key: getattr(current, key) if current is not None else None for key in values}
    if current is None:
        before["status"] = DealStatus.OPEN.value  # a new deal is open unless told otherwise
    changed = changed_fields(before, values)
    writes = {key: values[key] for key in changed}
    if metadata:
        stored = current.metadata if current is not None else {}
        merged = merge_metadata(stored, metadata)
        if merged != stored:
            writes["metadata"] = merged
            changed.append("metadata")
    deal = current
    if created or changed:
        writes["updated_at"] = tx.now
        deal = await save_deal(
            tx,
            company_id=company.id,
            deal_id=request.deal.id,
            row_id=current.id if current is not None else None,
            values=writes,
        )
        await add_event(
            tx,
            {
                "project_id": call.project.id,
                "contact_id": contact.id,
                "visitor_row_id": call.visitor_row_id,
                "company_id": company.id,
                "scope": EventScope.COMPANY.value,
                "name": "deal-updated",
                "properties": {
                    "deal_id": request.deal.id,
                    "created": created,
                    "changed": changed,
                    "stage": deal.stage,
                    "status": deal.status,
                },
            },
        )
        shown = deal_view(deal).model_dump(mode="json")
        tx.record(
            call.project.id,
            ChangeType.DEAL_UPDATED,
            {"company_id": company.external_id, "deal": shown, "created": created,
             "changed": changed},
        )  # fmt: skip
    return SetDealResult(company=company, deal=deal, created=created, changed=changed)

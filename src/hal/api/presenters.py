"""Shape database rows into the response models of `hal.schemas`."""

from __future__ import annotations

from hal.db.models import Company, Contact, Deal, Event
from hal.domain.crm import DealStatus, EventScope
from hal.domain.stages import StageDecision, StageMode
from hal.schemas import CompanyOut, ContactOut, DealOut, EventOut, StageWriteOut


def contact_out(contact: Contact) -> ContactOut:
    return ContactOut(
        id=contact.id,
        user_id=contact.user_id,
        email=contact.email,
        name=contact.name,
        metadata=contact.metadata_,
        verified=contact.verified,
    )


def company_out(company: Company | None) -> CompanyOut | None:
    if company is None:
        return None
    return CompanyOut(
        id=company.external_id, name=company.name, stage=company.stage, metadata=company.metadata_
    )


def stage_out(
    decision: StageDecision | None, mode: StageMode | None, company: Company | None
) -> StageWriteOut | None:
    if decision is None or mode is None:
        return None
    return StageWriteOut(
        applied=decision.applied,
        previous=decision.previous,
        stage=company.stage if company is not None else None,
        mode=mode,
        reason=decision.reason,
    )


def event_out(event: Event, company: Company | None) -> EventOut:
    return EventOut(
        id=event.id,
        name=event.name,
        scope=EventScope(event.scope),
        properties=event.properties,
        occurred_at=event.occurred_at,
        received_at=event.received_at,
        event_id=event.event_key,
        contact_id=event.contact_id,
        company_id=company.external_id if company is not None else None,
    )


def deal_out(deal: Deal) -> DealOut:
    return DealOut(
        id=deal.external_id,
        name=deal.name,
        amount=float(deal.amount) if deal.amount is not None else None,
        currency=deal.currency,
        stage=deal.stage,
        status=DealStatus(deal.status),
        close_date=deal.close_date,
        metadata=deal.metadata_,
        updated_at=deal.updated_at,
    )

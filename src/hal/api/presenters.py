"""Shape database rows into the response models of `hal.schemas`."""

from __future__ import annotations

from typing import Any

from hal.db.models import Company, Contact, Conversation, Deal, Event, Message
from hal.db.store.base import CompanyRow
from hal.domain.crm import EventScope
from hal.domain.stages import StageDecision, StageMode
from hal.schemas import (
    CompanyBrief,
    CompanyOut,
    CompanySummary,
    ConversationOut,
    ConversationSummaryOut,
    DealOut,
    EventOut,
    MessageOut,
    PersonOut,
    StageWriteOut,
)
from hal.services.change_data import company_view, deal_view
from hal.services.change_data import contact_out as contact_out  # shared with the change log
from hal.services.change_data import contact_summary as contact_summary
from hal.services.team import ConversationSummary


def company_out(company: Company | CompanyRow, *, visible: bool = True) -> CompanyOut:
    """The company; only its id when the caller may not learn the rest."""
    if not visible:
        return CompanyOut(id=company.external_id, name=None, stage=None, metadata={})
    return company_view(company)


def company_summary(company: Company, contact_count: int) -> CompanySummary:
    return CompanySummary(
        **company_view(company).model_dump(),
        created_at=company.created_at,
        contact_count=contact_count,
    )


def optional_company_out(
    company: Company | CompanyRow | None, *, visible: bool = True
) -> CompanyOut | None:
    return company_out(company, visible=visible) if company is not None else None


def stage_out(
    decision: StageDecision | None, mode: StageMode | None, company: Company | CompanyRow | None
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


def deal_out(deal: Deal | Any) -> DealOut:
    return deal_view(deal)


def message_out(message: Message | Any) -> MessageOut:
    return MessageOut(
        id=message.id,
        author=message.author,
        author_name=message.author_name,
        body=message.body,
        sender_verified=message.sender_verified,
        created_at=message.created_at,
    )


def conversation_out(
    conversation: Conversation | Any, messages: list[Message] | list[Any]
) -> ConversationOut:
    return ConversationOut(
        id=conversation.id,
        status=conversation.status,
        created_at=conversation.created_at,
        last_message_at=conversation.last_message_at,
        messages=[message_out(m) for m in messages],
    )


def person_out(contact: Contact) -> PersonOut:
    return PersonOut(
        id=contact.id,
        name=contact.name,
        email=contact.email,
        user_id=contact.user_id,
        verified=contact.verified,
        email_verified=contact.email_verified,
    )


def conversation_summary_out(summary: ConversationSummary) -> ConversationSummaryOut:
    conversation, company = summary.conversation, summary.company
    return ConversationSummaryOut(
        id=conversation.id,
        status=conversation.status,
        created_at=conversation.created_at,
        last_message_at=conversation.last_message_at,
        contact=person_out(summary.contact) if summary.contact else None,
        company=CompanyBrief(id=company.external_id, name=company.name, stage=company.stage)
        if company
        else None,
        last_message=message_out(summary.last_message) if summary.last_message else None,
    )


def company_events_out(events: list[Event], companies: dict[int, Company]) -> list[EventOut]:
    return [
        event_out(event, companies.get(event.company_id) if event.company_id else None)
        for event in events
    ]

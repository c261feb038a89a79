"""Export a person (README "Privacy and data hygiene"): one document with everything held about
a contact: the contact, its visitors and their properties, linked companies, events, and its
conversations with their messages."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Company, Contact, Conversation, Event, Message, Project, Visitor
from hal.db.queries import linked_companies
from hal.db.types import utcnow
from hal.services.team import companies_by_id, get_contact


@dataclass(frozen=True)
class PersonData:
    exported_at: datetime
    contact: Contact
    visitors: list[Visitor]
    companies: list[Company]
    events: list[Event]
    event_companies: dict[int, Company]
    conversations: list[tuple[Conversation, list[Message]]]
    visitor_companies: dict[int, Company]


async def export_contact(*, session: AsyncSession, project: Project, contact_id: int) -> PersonData:
    """Everything held about the contact, read in one transaction."""
    contact = await get_contact(session=session, project=project, contact_id=contact_id)
    visitors = list(
        (
            await session.execute(
                select(Visitor).where(Visitor.contact_id == contact.id).order_by(Visitor.id)
            )
        ).scalars()
    )
    visitor_row_ids = [v.id for v in visitors]
    events = list(
        (
            await session.execute(
                select(Event)
                .where(
                    or_(
                        Event.contact_id == contact.id,
                        Event.visitor_row_id.in_(visitor_row_ids) & Event.contact_id.is_(None),
                    )
                )
                .order_by(Event.id)
            )
        ).scalars()
    )
    conversations = list(
        (
            await session.execute(
                select(Conversation)
                .where(
                    or_(
                        Conversation.contact_id == contact.id,
                        Conversation.visitor_row_id.in_(visitor_row_ids)
                        & Conversation.contact_id.is_(None),
                    )
                )
                .order_by(Conversation.id)
            )
        ).scalars()
    )
    messages: dict[int, list[Message]] = {c.id: [] for c in conversations}
    if conversations:
        rows = await session.execute(
            select(Message).where(Message.conversation_id.in_(messages)).order_by(Message.id)
        )
        for message in rows.scalars():
            messages[message.conversation_id].append(message)
    return PersonData(
        exported_at=utcnow(),
        contact=contact,
        visitors=visitors,
        companies=await linked_companies(session, contact.id),
        events=events,
        event_companies=await companies_by_id(session, {e.company_id for e in events}),
        conversations=[(c, messages[c.id]) for c in conversations],
        visitor_companies=await companies_by_id(session, {v.active_company_id for v in visitors}),
    )

"""What the support team reads and writes: contacts, companies, events (team API and inbox)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, union
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Tx
from hal.db.models import (
    Company,
    Contact,
    ContactCompany,
    ContactMerge,
    Conversation,
    Deal,
    Event,
    Message,
    Project,
    StageChange,
    Visitor,
)
from hal.db.queries import linked_companies
from hal.db.store.base import CompanyRow, ContactRow
from hal.db.store.companies import company_for_update
from hal.db.store.people import contact_by_id
from hal.db.store.people import update_contact as store_update_contact
from hal.domain.attributes import Model
from hal.domain.changes import ChangeType
from hal.domain.errors import Gone, InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.search import fold
from hal.domain.stages import StageDecision, StageMode, StageSource
from hal.domain.validation import check_metadata, check_text, merge_metadata
from hal.services import conversations
from hal.services.attributes import check_types, define_new
from hal.services.audit import CLI, Actor, record_audit
from hal.services.change_data import contact_changes, contact_data
from hal.services.paging import MAX_ID as MAX_ID  # the API's bounds, named here too
from hal.services.paging import MAX_PAGE as MAX_PAGE
from hal.services.paging import Page, decode_cursor, page_of
from hal.services.stages import decide_stage, stage_changed, write_company_and_stage


def encode_activity_cursor(at: datetime, last_id: int) -> str:
    text = f"{at.isoformat()}|{last_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_activity_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    """(last activity, id) of the last conversation a page showed."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        at, _, last_id = base64.urlsafe_b64decode(padded.encode()).decode().partition("|")
        found = (datetime.fromisoformat(at), int(last_id))
    except (ValueError, binascii.Error, UnicodeDecodeError):
        found = None
    if found is None or found[0].tzinfo is None or not 1 <= found[1] <= MAX_ID:
        raise InvalidInput("invalid_cursor", "cursor is not one this API gave", field="cursor")
    return found


async def search_contacts(
    *, session: AsyncSession, project: Project, q: str | None, cursor: str | None, limit: int
) -> Page:
    """Contacts whose name, email or user_id starts with `q` (case-insensitive), newest first.

    Each key is a lower-cased column compared in byte order, and each is searched on its own
    index range (`>= q` and `< q + U+10FFFF`); the union of the three keeps the cost
    proportional to the matches, not to the number of contacts (an OR over the three lets
    the planner walk the whole table by id instead).
    """
    after = decode_cursor(cursor)
    query = select(Contact)
    if not (q and q.strip()):
        query = query.where(Contact.project_id == project.id, Contact.erased_at.is_(None))
    else:
        # The project is filtered inside each branch: filtering it again outside makes
        # SQLite walk the project's index instead of looking the matches up by id.
        matches = [
            select(Contact.id).where(
                Contact.project_id == project.id,
                column >= low,
                column < low + "\U0010ffff",
                *([Contact.id < after] if after is not None else []),
            )
            for column, low in (
                (Contact.search_name, fold(q.strip())),
                (Contact.email_normalized, q.strip().lower()),
                (Contact.search_user_id, fold(q.strip())),
            )
        ]
        query = query.where(Contact.id.in_(union(*matches)))
    if after is not None:
        query = query.where(Contact.id < after)
    rows = (await session.execute(query.order_by(Contact.id.desc()).limit(limit + 1))).scalars()
    return page_of(list(rows), limit)


async def get_contact(*, session: AsyncSession, project: Project, contact_id: int) -> Contact:
    """The contact, unless it is gone: erased (404) or merged into another (410)."""
    contact = await session.get(Contact, contact_id)
    if contact is None or contact.project_id != project.id or contact.erased_at is not None:
        merge = await session.get(ContactMerge, contact_id)
        if merge is not None and merge.project_id == project.id:
            raise Gone(
                "contact_merged",
                f"contact {contact_id} was merged into contact {merge.into_contact_id}",
                details={"merged_into": merge.into_contact_id},
                field="contact_id",
            )
        raise NotFound(
            "unknown_contact", f"no contact {contact_id} in this project", field="contact_id"
        )
    return contact


async def get_company(*, session: AsyncSession, project: Project, company_id: str) -> Company:
    query = select(Company).where(
        Company.project_id == project.id, Company.external_id == company_id
    )
    company = (await session.execute(query)).scalar_one_or_none()
    if company is None:
        raise NotFound(
            "unknown_company", f"no company {company_id!r} in this project", field="company_id"
        )
    return company


@dataclass(frozen=True)
class ContactDetail:
    contact: Contact
    companies: list[Company]
    active_company: Company | None
    events: list[Event]
    conversations: list[ConversationSummary]
    deals: list[tuple[Company, Deal]]


async def contact_detail(
    *, session: AsyncSession, project: Project, contact_id: int
) -> ContactDetail:
    """A contact with its companies (the active one of its latest visitor), recent events,
    conversations and the deals of its companies."""
    contact = await get_contact(session=session, project=project, contact_id=contact_id)
    companies = await linked_companies(session, contact.id)
    active_id = (
        await session.execute(
            select(Visitor.active_company_id)
            .where(Visitor.contact_id == contact.id)
            .order_by(Visitor.last_seen_at.desc())
            .limit(1)
        )
    ).scalar_one_or_none()
    by_id = {company.id: company for company in companies}
    events = (
        await session.execute(
            select(Event).where(Event.contact_id == contact.id).order_by(Event.id.desc()).limit(20)
        )
    ).scalars()
    conversations = (
        await session.execute(
            select(Conversation)
            .where(Conversation.contact_id == contact.id)
            .order_by(Conversation.last_message_at.desc())
            .limit(20)
        )
    ).scalars()
    deals = await deals_of(session, list(by_id))
    return ContactDetail(
        contact=contact,
        companies=companies,
        active_company=by_id.get(active_id) if active_id else None,
        events=list(events),
        conversations=await summarize(session, list(conversations)),
        deals=[(by_id[deal.company_id], deal) for deal in deals],
    )


async def deals_of(session: AsyncSession, company_ids: list[int]) -> list[Deal]:
    if not company_ids:
        return []
    query = select(Deal).where(Deal.company_id.in_(company_ids)).order_by(Deal.updated_at.desc())
    return list((await session.execute(query)).scalars())


@dataclass(frozen=True)
class CompanyDetail:
    company: Company
    contacts: list[Contact]
    contact_count: int
    history: list[StageChange]
    deals: list[Deal]
    events: list[Event]


async def company_detail(
    *, session: AsyncSession, project: Project, company_id: str, contacts_limit: int = 100
) -> CompanyDetail:
    company = await get_company(session=session, project=project, company_id=company_id)
    linked = select(ContactCompany.contact_id).where(ContactCompany.company_id == company.id)
    contacts = (
        await session.execute(
            select(Contact)
            .where(Contact.id.in_(linked))
            .order_by(Contact.name, Contact.id)
            .limit(contacts_limit)
        )
    ).scalars()
    count = (
        await session.execute(
            select(func.count())
            .select_from(ContactCompany)
            .where(ContactCompany.company_id == company.id)
        )
    ).scalar_one()
    history = (
        await session.execute(
            select(StageChange)
            .where(StageChange.company_id == company.id)
            .order_by(StageChange.id.desc())
        )
    ).scalars()
    events = (
        await session.execute(
            select(Event).where(Event.company_id == company.id).order_by(Event.id.desc()).limit(20)
        )
    ).scalars()
    return CompanyDetail(
        company=company,
        contacts=list(contacts),
        contact_count=count,
        history=list(history),
        deals=await deals_of(session, [company.id]),
        events=list(events),
    )


async def agent_set_stage(
    tx: Tx, *, project: Project, company_id: str, stage: str, limits: Limits, actor: Actor = CLI
) -> tuple[CompanyRow, StageDecision]:
    """An agent's stage write: always applied, and remembered as the agent's (agent_wins)."""
    check_text(stage, field="stage", max_length=limits.max_name_length)
    found = await get_company(session=tx.orm, project=project, company_id=company_id)
    company = await company_for_update(tx, found.id)
    write = decide_stage(
        company,
        stage=stage,
        mode=StageMode.OVERWRITE,
        source=StageSource.AGENT,
        pipeline=project.stages,
    )
    values = {"version": company.version + 1} if write.decision.applied else {}
    company = await write_company_and_stage(
        tx, project_id=project.id, company=company, values=values, stage=write, contact_id=None
    )
    stage_changed(tx, project_id=project.id, company=company, stage=write)
    await record_audit(
        tx,
        project_id=project.id,
        actor=actor,
        action="company.stage_set",
        target=company.external_id,
        changes={"stage": {"old": write.decision.previous, "new": stage}},
        now=tx.now,
    )
    return company, write.decision


async def list_events(
    *,
    session: AsyncSession,
    project: Project,
    contact_id: int | None,
    company_id: str | None,
    name: str | None,
    cursor: str | None,
    limit: int,
) -> EventPage:
    """Events newest first, filtered, paged by cursor, with the companies they name."""
    query = select(Event).where(Event.project_id == project.id)
    if contact_id is not None:
        query = query.where(Event.contact_id == contact_id)
    if company_id is not None:
        company = await get_company(session=session, project=project, company_id=company_id)
        query = query.where(Event.company_id == company.id)
    if name is not None:
        query = query.where(Event.name == name)
    after = decode_cursor(cursor)
    if after is not None:
        query = query.where(Event.id < after)
    rows = (await session.execute(query.order_by(Event.id.desc()).limit(limit + 1))).scalars()
    page = page_of(list(rows), limit)
    companies = await companies_by_id(session, {e.company_id for e in page.items})
    return EventPage(page.items, companies, page.next_cursor)


@dataclass(frozen=True)
class EventPage:
    items: list[Event]
    companies: dict[int, Company]  # by row id, for the events' company ids
    next_cursor: str | None


@dataclass(frozen=True)
class ConversationSummary:
    conversation: Conversation
    contact: Contact | None
    company: Company | None
    last_message: Message | None


async def list_conversations(
    *, session: AsyncSession, project: Project, status: str | None, cursor: str | None, limit: int
) -> Page:
    """Conversations, most recently active first, each with its contact, company and last
    message."""
    query = select(Conversation).where(Conversation.project_id == project.id)
    if status is not None:
        query = query.where(Conversation.status == status)
    after = decode_activity_cursor(cursor)
    if after is not None:
        at, last_id = after
        query = query.where(
            or_(
                Conversation.last_message_at < at,
                and_(Conversation.last_message_at == at, Conversation.id < last_id),
            )
        )
    newest_first = (Conversation.last_message_at.desc(), Conversation.id.desc())
    rows = list((await session.execute(query.order_by(*newest_first).limit(limit + 1))).scalars())
    conversations: list[Conversation] = rows[:limit]
    last = conversations[-1] if len(rows) > limit else None
    next_cursor = encode_activity_cursor(last.last_message_at, last.id) if last else None
    return Page(await summarize(session, conversations), next_cursor)


@dataclass(frozen=True)
class Thread:
    """A conversation's screen: the thread with its contact and company, its messages, and
    (for the inbox) the contact's detail."""

    summary: ConversationSummary
    messages: list[Message]
    contact: ContactDetail | None = None


async def thread(
    *, session: AsyncSession, project: Project, conversation_id: int, with_contact: bool = False
) -> Thread:
    conversation = await conversations.get_conversation(
        session=session, project=project, conversation_id=conversation_id
    )
    [summary] = await summarize(session, [conversation])
    messages = (await conversations.messages_of(session, [conversation.id]))[conversation.id]
    contact = None
    if with_contact and conversation.contact_id is not None:
        contact = await contact_detail(
            session=session, project=project, contact_id=conversation.contact_id
        )
    return Thread(summary, messages, contact)


async def set_conversation_status(
    tx: Tx, *, project: Project, conversation_id: int, status: str
) -> Thread:
    """Close or reopen a conversation; the thread as it now stands."""
    await conversations.set_status(
        tx, project=project, conversation_id=conversation_id, status=status
    )
    return await thread(session=tx.orm, project=project, conversation_id=conversation_id)


async def summarize(
    session: AsyncSession, conversations: list[Conversation]
) -> list[ConversationSummary]:
    contact_ids = {c.contact_id for c in conversations if c.contact_id}
    company_ids = {c.company_id for c in conversations if c.company_id}
    contacts = {
        c.id: c
        for c in (
            await session.execute(select(Contact).where(Contact.id.in_(contact_ids)))
        ).scalars()
    }
    companies = {
        c.id: c
        for c in (
            await session.execute(select(Company).where(Company.id.in_(company_ids)))
        ).scalars()
    }
    last_ids = (
        select(func.max(Message.id))
        .where(Message.conversation_id.in_([c.id for c in conversations]))
        .group_by(Message.conversation_id)
    )
    last = {
        m.conversation_id: m
        for m in (await session.execute(select(Message).where(Message.id.in_(last_ids)))).scalars()
    }
    return [
        ConversationSummary(
            conversation=c,
            contact=contacts.get(c.contact_id) if c.contact_id else None,
            company=companies.get(c.company_id) if c.company_id else None,
            last_message=last.get(c.id),
        )
        for c in conversations
    ]


async def companies_by_id(session: AsyncSession, ids: set[int | None]) -> dict[int, Company]:
    wanted = [i for i in ids if i is not None]
    if not wanted:
        return {}
    rows = await session.execute(select(Company).where(Company.id.in_(wanted)))
    return {company.id: company for company in rows.scalars()}


async def update_contact(
    tx: Tx,
    *,
    project: Project,
    contact_id: int,
    name: str | None,
    metadata: dict[str, Any] | None,
    limits: Limits,
    actor: Actor = CLI,
) -> ContactRow:
    """The team's write to a contact: name and metadata (null deletes). Protected keys may be
    written here: the team API is trusted, the widget is not."""
    if name is not None:
        name = check_text(name, field="name", max_length=limits.max_name_length)
    checked = check_metadata(metadata, field="metadata", limits=limits) if metadata else None
    config = await tx.projects.get(tx.connection, project.app_id)
    assert config is not None  # the caller's token named this project
    typed = check_types(config, Model.CONTACT, checked or {}, limits=limits, refuse=True)
    await get_contact(session=tx.orm, project=project, contact_id=contact_id)
    contact = await contact_by_id(tx, contact_id)
    assert contact is not None  # it exists (above) and is locked now
    after = replace(
        contact,
        name=name if name is not None else contact.name,
        metadata_=merge_metadata(contact.metadata_, typed.values) if checked else contact.metadata_,
    )
    changed = contact_changes(contact, after)
    if not changed:
        return contact
    await define_new(
        tx, typed, project=config, model=Model.CONTACT, limits=limits,
        refuse=True,
    )  # fmt: skip
    after = replace(after, version=contact.version + 1)
    values = {"name": after.name, "metadata": after.metadata_, "version": after.version}
    await store_update_contact(tx, contact.id, values)
    tx.record(project.id, ChangeType.CONTACT_UPDATED, {**contact_data(after), "changed": changed})
    await record_audit(
        tx,
        project_id=project.id,
        actor=actor,
        action="contact.updated",
        target=str(contact.id),
        changes=changed,
        now=tx.now,
    )
    return after

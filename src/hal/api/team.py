"""Team API under /api/projects/{app_id}: bearer tokens from `hal tokens create`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Query

from hal.api.body import StrictJSONRoute
from hal.api.deps import (
    Cursor,
    DatabaseDep,
    Limit,
    RowId,
    SettingsDep,
    TeamProjectDep,
    TokenActorDep,
)
from hal.api.errors import error_responses
from hal.api.presenters import (
    company_events_out,
    company_out,
    company_summary,
    contact_summary,
    conversation_summary_out,
    deal_out,
    message_out,
    optional_company_out,
    person_out,
)
from hal.db.engine import Database, Tx
from hal.db.models import Project
from hal.domain.errors import InvalidInput
from hal.domain.search import Kind
from hal.schemas import (
    CompanyDealOut,
    CompanyDetailOut,
    CompanyPage,
    ContactDetailOut,
    ContactPage,
    ContactPatch,
    ContactSearchPage,
    ContactSummary,
    ConversationPage,
    ConversationSearchPage,
    EventPage,
    LinkedCompanyOut,
    MessageOut,
    ReplyRequest,
    SearchRequest,
    StageChangeOut,
    StagePatch,
    StagePatchOut,
    ThreadOut,
)
from hal.services import conversations, search, team, views

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["team"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


@dataclass(frozen=True)
class Listed:
    """A list's query parameters: `filter` and `sort` are a search's, as URL-encoded JSON;
    `view` a saved view's id."""

    # A URL stays well inside what the HTTP server reads (80 KiB of request line and
    # headers, even percent-encoded); a longer query is POSTed to /search.
    filter: str | None = Query(
        None, max_length=4000, description='a search query as URL-encoded JSON (README "Search")'
    )
    sort: str | None = Query(
        None, max_length=1000, description='{"field", "order"} as URL-encoded JSON'
    )
    view: int | None = Query(None, ge=1, le=team.MAX_ID, description="a saved view's id")
    cursor: str | None = Query(None, max_length=1000, description="next_cursor of the last page")
    limit: int = Query(50, ge=1, le=team.MAX_PAGE)

    @property
    def searched(self) -> bool:
        return self.filter is not None or self.sort is not None or self.view is not None


ListedDep = Annotated[Listed, Depends()]


async def _search(
    db: Database, project: Project, kind: Kind, body: SearchRequest
) -> search.SearchPage:
    async def work(tx: Tx) -> search.SearchPage:
        return await search.list_records(
            tx, app_id=project.app_id, kind=kind, filters=[(body.query, "query")],
            sort=body.sort, limit=body.limit, cursor=body.cursor,
        )  # fmt: skip

    return await db.run(work)


async def _filtered(
    db: Database,
    project: Project,
    kind: Kind,
    listed: Listed,
    also: list[search.Filter] | None = None,
) -> search.SearchPage:
    filters = [*(also or []), (search.read_json(listed.filter, "filter"), "filter")]
    sort = search.read_json(listed.sort, "sort")
    return await db.run(
        lambda tx: views.find(
            tx, app_id=project.app_id, kind=kind, view_id=listed.view, filters=filters,
            sort=sort, limit=listed.limit, cursor=listed.cursor,
        )
    )  # fmt: skip


@router.get("/contacts", response_model=ContactPage)
async def list_contacts(
    project: TeamProjectDep,
    db: DatabaseDep,
    listed: ListedDep,
    q: Annotated[str | None, Query(max_length=255, description="name, email or user_id")] = None,
) -> ContactPage:
    """Contacts whose name, email or user_id starts with `q`, newest first; or, with
    `filter` or `view`, those the search finds, with their total."""
    if listed.searched:
        if q is not None:
            raise InvalidInput("invalid_query", "q does not combine with filter", field="q")
        page = await _filtered(db, project, Kind.CONTACTS, listed)
        return ContactPage(
            items=[contact_summary(c) for c in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
            total_exact=page.total_exact,
        )
    found = await db.transaction(
        lambda s: team.search_contacts(
            session=s, project=project, q=q, cursor=listed.cursor, limit=listed.limit
        )
    )
    return ContactPage(
        items=[contact_summary(c) for c in found.items], next_cursor=found.next_cursor
    )


@router.post("/contacts/search", response_model=ContactSearchPage)
async def search_contacts(
    body: SearchRequest, project: TeamProjectDep, db: DatabaseDep
) -> ContactSearchPage:
    """Contacts a query finds (fields, operators and the missing-value rule: README
    "Search"), sorted, paged by cursor, with their total."""
    page = await _search(db, project, Kind.CONTACTS, body)
    return ContactSearchPage(
        items=[contact_summary(c) for c in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
        total_exact=page.total_exact,
    )


def _companies(page: search.SearchPage) -> CompanyPage:
    return CompanyPage(
        items=[company_summary(c.company, c.contact_count) for c in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
        total_exact=page.total_exact,
    )


@router.get("/companies", response_model=CompanyPage)
async def list_companies(
    project: TeamProjectDep,
    db: DatabaseDep,
    listed: ListedDep,
) -> CompanyPage:
    """Companies newest first, or as `sort` says; with `filter` or `view`, those the search
    finds."""
    return _companies(await _filtered(db, project, Kind.COMPANIES, listed))


@router.post("/companies/search", response_model=CompanyPage)
async def search_companies(
    body: SearchRequest, project: TeamProjectDep, db: DatabaseDep
) -> CompanyPage:
    """Companies a query finds: built-ins, `metadata.KEY`, `deal.status` and `deal.amount`
    (any of its deals), `event` (company events)."""
    return _companies(await _search(db, project, Kind.COMPANIES, body))


@router.get("/contacts/{contact_id}", response_model=ContactDetailOut)
async def contact_detail(
    contact_id: RowId, project: TeamProjectDep, db: DatabaseDep
) -> ContactDetailOut:
    """A contact with its companies, active company, deals, latest events and conversations."""
    detail = await db.transaction(
        lambda s: team.contact_detail(session=s, project=project, contact_id=contact_id)
    )
    companies = {c.id: c for c in detail.companies}
    active_id = detail.active_company.id if detail.active_company else None
    return ContactDetailOut(
        contact=contact_summary(detail.contact),
        active_company=optional_company_out(detail.active_company),
        companies=[
            LinkedCompanyOut(**company_out(c).model_dump(), active=c.id == active_id)
            for c in detail.companies
        ],
        deals=[
            CompanyDealOut(**deal_out(d).model_dump(), company_id=c.external_id)
            for c, d in detail.deals
        ],
        events=company_events_out(detail.events, companies),
        conversations=[conversation_summary_out(s) for s in detail.conversations],
    )


@router.patch("/contacts/{contact_id}", response_model=ContactSummary)
async def patch_contact(
    contact_id: RowId,
    body: ContactPatch,
    project: TeamProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: TokenActorDep,
) -> ContactSummary:
    """The team's write to a contact's name and metadata (protected keys included)."""
    contact = await db.run(
        lambda tx: team.update_contact(
            tx,
            project=project,
            contact_id=contact_id,
            name=body.name,
            metadata=body.metadata,
            limits=settings.limits,
            actor=actor,
        )
    )
    return contact_summary(contact)


@router.get("/companies/{company_id:path}", response_model=CompanyDetailOut)
async def company_detail(
    company_id: str, project: TeamProjectDep, db: DatabaseDep
) -> CompanyDetailOut:
    """A company with its contacts, stage and stage history, deals and latest events."""
    detail = await db.transaction(
        lambda s: team.company_detail(session=s, project=project, company_id=company_id)
    )
    company = detail.company
    return CompanyDetailOut(
        company=company_out(company),
        stage_source=company.stage_source,
        stage_updated_at=company.stage_updated_at,
        stage_history=[
            StageChangeOut(
                value=h.value, previous=h.previous, source=h.source, created_at=h.created_at
            )
            for h in detail.history
        ],
        contacts=[person_out(c) for c in detail.contacts],
        contact_count=detail.contact_count,
        deals=[deal_out(d) for d in detail.deals],
        events=company_events_out(detail.events, {company.id: company}),
    )


@router.patch("/companies/{company_id:path}", response_model=StagePatchOut)
async def patch_company(
    company_id: str,
    body: StagePatch,
    project: TeamProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: TokenActorDep,
) -> StagePatchOut:
    """An agent's stage write: always applied; `agent_wins` widget writes then yield to it."""
    company, decision = await db.run(
        lambda tx: team.agent_set_stage(
            tx,
            project=project,
            company_id=company_id,
            stage=body.stage,
            limits=settings.limits,
            actor=actor,
        )
    )
    return StagePatchOut(
        company=company_out(company),
        applied=decision.applied,
        previous=decision.previous,
    )


@router.get("/conversations", response_model=ConversationPage)
async def list_conversations(
    project: TeamProjectDep,
    db: DatabaseDep,
    listed: ListedDep,
    status: Literal["open", "closed"] | None = None,
) -> ConversationPage:
    """Conversations with each contact's name, email and company, and the last message, most
    recently active first; with `filter` or `view`, those the search finds, with their total."""
    if listed.searched:
        also: list[search.Filter] = []
        if status is not None:
            also.append(({"field": "status", "operator": "=", "value": status}, "status"))
        page = await _filtered(db, project, Kind.CONVERSATIONS, listed, also)
        return ConversationPage(
            items=[conversation_summary_out(s) for s in page.items],
            next_cursor=page.next_cursor,
            total=page.total,
            total_exact=page.total_exact,
        )
    found = await db.transaction(
        lambda s: team.list_conversations(
            session=s, project=project, status=status, cursor=listed.cursor, limit=listed.limit
        )
    )
    return ConversationPage(
        items=[conversation_summary_out(s) for s in found.items], next_cursor=found.next_cursor
    )


@router.post("/conversations/search", response_model=ConversationSearchPage)
async def search_conversations(
    body: SearchRequest, project: TeamProjectDep, db: DatabaseDep
) -> ConversationSearchPage:
    """Conversations a query finds: `status`, `created_at`, `updated_at` (last activity),
    `contact.FIELD`, `contact.metadata.KEY`, `company.FIELD`, `company.metadata.KEY`."""
    page = await _search(db, project, Kind.CONVERSATIONS, body)
    return ConversationSearchPage(
        items=[conversation_summary_out(s) for s in page.items],
        next_cursor=page.next_cursor,
        total=page.total,
        total_exact=page.total_exact,
    )


def _thread_out(thread: team.Thread) -> ThreadOut:
    return ThreadOut(
        conversation=conversation_summary_out(thread.summary),
        messages=[message_out(m) for m in thread.messages],
    )


@router.get("/conversations/{conversation_id}", response_model=ThreadOut)
async def get_thread(conversation_id: RowId, project: TeamProjectDep, db: DatabaseDep) -> ThreadOut:
    """The thread with its contact and company."""
    thread = await db.transaction(
        lambda s: team.thread(session=s, project=project, conversation_id=conversation_id)
    )
    return _thread_out(thread)


@router.post("/conversations/{conversation_id}/messages", response_model=MessageOut)
async def post_reply(
    conversation_id: RowId, body: ReplyRequest, project: TeamProjectDep, db: DatabaseDep
) -> MessageOut:
    """Reply as the support team; the visitor sees it in GET /api/widget/messages."""
    message = await db.run(
        lambda tx: conversations.reply(
            tx, project=project, conversation_id=conversation_id, body=body.body, agent=None
        )
    )
    return message_out(message)


async def _set_status(
    db: Database, project: Project, conversation_id: int, status: str
) -> ThreadOut:
    thread = await db.run(
        lambda tx: team.set_conversation_status(
            tx, project=project, conversation_id=conversation_id, status=status
        )
    )
    return _thread_out(thread)


@router.post("/conversations/{conversation_id}/close", response_model=ThreadOut)
async def close_conversation(
    conversation_id: RowId, project: TeamProjectDep, db: DatabaseDep
) -> ThreadOut:
    """Close the conversation; the visitor's next message starts a new one."""
    return await _set_status(db, project, conversation_id, "closed")


@router.post("/conversations/{conversation_id}/reopen", response_model=ThreadOut)
async def reopen_conversation(
    conversation_id: RowId, project: TeamProjectDep, db: DatabaseDep
) -> ThreadOut:
    """Reopen a closed conversation."""
    return await _set_status(db, project, conversation_id, "open")


@router.get("/events", response_model=EventPage)
async def list_events(
    project: TeamProjectDep,
    db: DatabaseDep,
    contact_id: Annotated[int | None, Query(ge=1, le=team.MAX_ID)] = None,
    company_id: Annotated[str | None, Query(max_length=255)] = None,
    name: Annotated[str | None, Query(max_length=128)] = None,
    cursor: Cursor = None,
    limit: Limit = 50,
) -> EventPage:
    """Events newest first, filtered by contact, company and name, paged by cursor."""
    page = await db.transaction(
        lambda s: team.list_events(
            session=s,
            project=project,
            contact_id=contact_id,
            company_id=company_id,
            name=name,
            cursor=cursor,
            limit=limit,
        )
    )
    return EventPage(
        items=company_events_out(page.items, page.companies), next_cursor=page.next_cursor
    )

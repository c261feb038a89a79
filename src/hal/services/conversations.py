"""Conversations and messages: the widget's chat and the team's replies."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database
from hal.db.models import Agent, Contact, Conversation, Message, Project, Visitor
from hal.db.types import utcnow
from hal.domain.errors import InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.validation import check_identifier
from hal.domain.verification import VerificationMode
from hal.schemas import WidgetMessageRequest
from hal.services.visitors import Caller, load_project, require_session, start_widget_call

OPEN, CLOSED = "open", "closed"


@dataclass(frozen=True)
class Thread:
    conversation: Conversation
    messages: list[Message]


def check_body(body: str, limit: int = 10_000) -> str:
    if not body.strip():
        raise InvalidInput("empty_value", "body must not be empty", field="body")
    if len(body) > limit:
        raise InvalidInput("too_long", f"body is longer than {limit} characters", field="body")
    return body


async def _open_conversation(session: AsyncSession, visitor: Visitor) -> Conversation | None:
    query = (
        select(Conversation)
        .where(Conversation.visitor_id == visitor.id, Conversation.status == OPEN)
        .order_by(Conversation.id.desc())
        .limit(1)
    )
    return (await session.execute(query)).scalar_one_or_none()


async def post_widget_message(
    *,
    db: Database,
    session: AsyncSession,
    request: WidgetMessageRequest,
    caller: Caller,
    limits: Limits,
) -> tuple[Conversation, Message]:
    """Append to the visitor's open conversation, creating it; attach contact and company."""
    now = utcnow()
    body = check_body(request.body)
    call = await start_widget_call(
        db=db,
        session=session,
        app_id=request.app_id,
        visitor_id=request.visitor_id,
        caller=caller,
        limits=limits,
        now=now,
    )
    project = call.project
    conversation = await _open_conversation(session, call.visitor)
    if conversation is None:
        conversation = Conversation(
            project_id=project.id, visitor_id=call.visitor.id, status=OPEN, created_at=now
        )
        session.add(conversation)
    if call.contact is not None:
        conversation.contact_id = call.contact.id
    if call.visitor.active_company_id is not None:
        conversation.company_id = call.visitor.active_company_id
    conversation.last_message_at = now
    await session.flush()
    verified = (
        call.contact is not None
        and call.contact.verified
        and project.identity_verification != VerificationMode.DISABLED
    )
    message = Message(
        conversation_id=conversation.id,
        author="visitor",
        author_name=call.contact.name if call.contact is not None else None,
        body=body,
        sender_verified=verified,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return conversation, message


async def messages_of(
    session: AsyncSession, conversation_ids: Sequence[int]
) -> dict[int, list[Message]]:
    if not conversation_ids:
        return {}
    query = (
        select(Message)
        .where(Message.conversation_id.in_(conversation_ids))
        .order_by(Message.conversation_id, Message.id)
    )
    grouped: dict[int, list[Message]] = {cid: [] for cid in conversation_ids}
    for message in (await session.execute(query)).scalars():
        grouped[message.conversation_id].append(message)
    return grouped


async def read_widget_messages(
    *, session: AsyncSession, app_id: str, visitor_id: str, caller: Caller, limits: Limits
) -> tuple[Thread | None, list[Thread]]:
    """The conversations this visitor may read: the ones it started, or, once it has proven
    to be a verified contact, all of that contact's."""
    project = await load_project(session=session, app_id=app_id, caller=caller)
    check_identifier(visitor_id, field="visitor_id", limits=limits)
    if caller.admission is not None:
        await caller.admission.visitor_call(project.app_id, visitor_id)
    visitor = (
        await session.execute(
            select(Visitor).where(
                Visitor.project_id == project.id, Visitor.visitor_key == visitor_id
            )
        )
    ).scalar_one_or_none()
    if visitor is None:
        return None, []
    contact = await session.get(Contact, visitor.contact_id) if visitor.contact_id else None
    require_session(project=project, visitor=visitor, bound=contact, caller=caller)
    readable = Conversation.visitor_id == visitor.id
    if (
        contact is not None
        and contact.verified
        and project.identity_verification != VerificationMode.DISABLED
    ):
        readable = or_(readable, Conversation.contact_id == contact.id)
    conversations = list(
        (
            await session.execute(
                select(Conversation)
                .where(Conversation.project_id == project.id, readable)
                .order_by(Conversation.last_message_at.desc(), Conversation.id.desc())
                .limit(50)
            )
        ).scalars()
    )
    grouped = await messages_of(session, [c.id for c in conversations])
    threads = [Thread(c, grouped[c.id]) for c in conversations]
    own = [t for t in threads if t.conversation.visitor_id == visitor.id]
    current = next((t for t in own if t.conversation.status == OPEN), own[0] if own else None)
    return current, threads


async def attach_visitor_conversations(
    session: AsyncSession, *, visitor: Visitor, contact: Contact
) -> None:
    """A conversation started anonymously belongs to the contact once the visitor identifies."""
    await session.execute(
        update(Conversation)
        .where(Conversation.visitor_id == visitor.id, Conversation.contact_id.is_(None))
        .values(contact_id=contact.id)
    )


async def move_conversations(session: AsyncSession, *, source: Contact, target: Contact) -> None:
    await session.execute(
        update(Conversation)
        .where(Conversation.contact_id == source.id)
        .values(contact_id=target.id)
    )


async def get_conversation(
    *, session: AsyncSession, project: Project, conversation_id: int
) -> Conversation:
    conversation = await session.get(Conversation, conversation_id)
    if conversation is None or conversation.project_id != project.id:
        raise NotFound(
            "unknown_conversation",
            f"no conversation {conversation_id} in this project",
            field="conversation_id",
        )
    return conversation


async def reply(
    *,
    session: AsyncSession,
    project: Project,
    conversation_id: int,
    body: str,
    agent: Agent | None,
    now: datetime | None = None,
) -> Message:
    """An agent's reply (the team API's token counts as an unnamed agent). Reopens a closed
    conversation, as support tools do when someone writes into it."""
    now = now or utcnow()
    conversation = await get_conversation(
        session=session, project=project, conversation_id=conversation_id
    )
    conversation.status = OPEN
    conversation.last_message_at = now
    message = Message(
        conversation_id=conversation.id,
        author="agent",
        agent_id=agent.id if agent else None,
        author_name=(agent.name or agent.email) if agent else "Support team",
        body=check_body(body),
        sender_verified=False,
        created_at=now,
    )
    session.add(message)
    await session.flush()
    return message


async def set_status(
    *, session: AsyncSession, project: Project, conversation_id: int, status: str
) -> Conversation:
    conversation = await get_conversation(
        session=session, project=project, conversation_id=conversation_id
    )
    conversation.status = status
    await session.flush()
    return conversation

"""Conversations and messages on the team side: threads, replies, open and closed.
The widget's side is `hal.services.widget_messages`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.changelog import record
from hal.db.models import Agent, Conversation, Message, Project
from hal.db.types import utcnow
from hal.domain.errors import InvalidInput, NotFound
from hal.services.change_data import conversation_data, message_data

OPEN, CLOSED = "open", "closed"


def check_body(body: str, limit: int = 10_000) -> str:
    if not body.strip():
        raise InvalidInput("empty_value", "body must not be empty", field="body")
    if len(body) > limit:
        raise InvalidInput("too_long", f"body is longer than {limit} characters", field="body")
    return body


async def messages_after(
    *, session: AsyncSession, project: Project, conversation_id: int, after: int
) -> list[Message]:
    """A conversation's messages after the message id `after` (the inbox's refresh)."""
    conversation = await get_conversation(
        session=session, project=project, conversation_id=conversation_id
    )
    query = (
        select(Message)
        .where(Message.conversation_id == conversation.id, Message.id > after)
        .order_by(Message.id)
    )
    return list((await session.execute(query)).scalars())


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
    reopened = conversation.status != OPEN
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
    anonymous = conversation.visitor_row_id if conversation.contact_id is None else None
    if reopened:
        data = conversation_data(conversation)
        record(session, project.id, "conversation.reopened", data, visitor_row_id=anonymous)
    data = message_data(conversation, message)
    record(session, project.id, "message.created", data, visitor_row_id=anonymous)
    return message


async def set_status(
    *, session: AsyncSession, project: Project, conversation_id: int, status: str
) -> Conversation:
    """Close or reopen a conversation; a change only when its status changes."""
    conversation = await get_conversation(
        session=session, project=project, conversation_id=conversation_id
    )
    if conversation.status != status:
        conversation.status = status
        await session.flush()
        kind = "conversation.closed" if status == CLOSED else "conversation.reopened"
        anonymous = conversation.visitor_row_id if conversation.contact_id is None else None
        record(session, project.id, kind, conversation_data(conversation), visitor_row_id=anonymous)
    return conversation

"""Conversations and messages on the team side: threads, replies, open and closed.
The widget's side is `hal.services.widget_messages`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Tx
from hal.db.models import Agent, Conversation, Message, Project
from hal.db.store.timeline import (
    add_message,
    conversation_for_update,
    set_conversation_status,
    touch_conversation,
)
from hal.domain.changes import ChangeType
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
        raise _unknown(conversation_id)
    return conversation


def _unknown(conversation_id: int) -> NotFound:
    return NotFound(
        "unknown_conversation",
        f"no conversation {conversation_id} in this project",
        field="conversation_id",
    )


async def _locked(tx: Tx, project: Project, conversation_id: int) -> Any:
    found = await conversation_for_update(
        tx, project_id=project.id, conversation_id=conversation_id
    )
    if found is None:
        raise NotFound(
            "unknown_conversation",
            f"no conversation {conversation_id} in this project",
            field="conversation_id",
        )
    return found


def _anonymous(conversation: Any) -> int | None:
    """The visitor a change about the conversation names, while it has no contact."""
    return conversation.visitor_row_id if conversation.contact_id is None else None


async def reply(
    tx: Tx, *, project: Project, conversation_id: int, body: str, agent: Agent | None
) -> Any:
    """An agent's reply (the team API's token counts as an unnamed agent). Reopens a closed
    conversation, as support tools do when someone writes into it."""
    text = check_body(body)
    conversation = await _locked(tx, project, conversation_id)
    reopened = conversation.status != OPEN
    conversation = await touch_conversation(tx, conversation.id, {"status": OPEN})
    message = await add_message(
        tx,
        {
            "conversation_id": conversation.id,
            "author": "agent",
            "agent_id": agent.id if agent else None,
            "author_name": (agent.name or agent.email) if agent else "Support team",
            "body": text,
            "sender_verified": False,
        },
    )
    anonymous = _anonymous(conversation)
    if reopened:
        data = conversation_data(conversation)
        tx.record(project.id, ChangeType.CONVERSATION_REOPENED, data, visitor_row_id=anonymous)
    data = message_data(conversation, message)
    tx.record(project.id, ChangeType.MESSAGE_CREATED, data, visitor_row_id=anonymous)
    return message


async def set_status(tx: Tx, *, project: Project, conversation_id: int, status: str) -> None:
    """Close or reopen a conversation; a change only when its status changes."""
    conversation = await _locked(tx, project, conversation_id)
    if conversation.status != status:
        conversation = await set_conversation_status(tx, conversation.id, status)
        kind = (
            ChangeType.CONVERSATION_CLOSED if status == CLOSED else ChangeType.CONVERSATION_REOPENED
        )
        data = conversation_data(conversation)
        tx.record(project.id, kind, data, visitor_row_id=_anonymous(conversation))

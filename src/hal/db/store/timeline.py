"""Tracked events with per-caller idempotency keys, conversations and messages."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import Table, and_, bindparam, or_, select, update

from hal.db.engine import Tx
from hal.db.prepared import prepared
from hal.db.store.base import CONVERSATIONS, EVENTS, MESSAGES, VisitorRow, insert, per_dialect
from hal.db.store.lookahead import needs_database


def event_owner(visitor: VisitorRow) -> str:
    """Whose idempotency keys an event_id belongs to: the contact, or the anonymous visitor."""
    return f"c{visitor.contact_id}" if visitor.contact_id is not None else f"v{visitor.id}"


_EVENT_BY_KEY = prepared(
    select(EVENTS.c.id).where(
        EVENTS.c.project_id == bindparam("project_id"),
        EVENTS.c.event_owner == bindparam("event_owner"),
        EVENTS.c.event_key == bindparam("event_key"),
    )
)


@per_dialect
def _insert_event(insert: Callable[[Table], Any]) -> Any:
    return insert(EVENTS).returning(EVENTS.c.id)


@per_dialect
def _insert_unread_event(insert: Callable[[Table], Any]) -> Any:
    return insert(EVENTS)


@per_dialect
def _insert_event_once(insert: Callable[[Table], Any]) -> Any:
    """An event with an event_id: nothing when its caller stored that event_id already."""
    return (
        insert(EVENTS)
        .on_conflict_do_nothing(
            index_elements=[EVENTS.c.project_id, EVENTS.c.event_owner, EVENTS.c.event_key]
        )
        .returning(EVENTS.c.id)
    )


async def add_event(tx: Tx, values: Mapping[str, Any]) -> int:
    """Append to the timeline; returns the event's id."""
    needs_database(tx)
    return int((await tx.execute(_insert_event(tx), _event(tx, values))).scalar_one())


async def write_event(tx: Tx, values: Mapping[str, Any]) -> None:
    """Append to the timeline, the event's id not read (a write held for the commit, Tx.write)."""
    needs_database(tx)
    await tx.write(_insert_unread_event(tx), _event(tx, values))


def _event(tx: Tx, values: Mapping[str, Any]) -> dict[str, Any]:
    return {"properties": {}, "occurred_at": tx.now, "received_at": tx.now, **values}


async def track_event(tx: Tx, values: Mapping[str, Any]) -> tuple[int, bool]:
    """Store a tracked event unless its caller already stored one with the same event_id.
    Returns the event's id and whether it was a repeat."""
    row = {"properties": {}, "received_at": tx.now, **values}
    statement = _insert_event_once(tx) if row.get("event_key") is not None else _insert_event(tx)
    inserted = (await tx.execute(statement, row)).scalar_one_or_none()
    if inserted is not None:
        return int(inserted), False
    keys = {k: row[k] for k in ("project_id", "event_owner", "event_key")}
    return int((await tx.execute(_EVENT_BY_KEY, keys)).scalar_one()), True


async def move_events(tx: Tx, *, where: Any, contact_id: int) -> None:
    """Give events to a contact; their event_ids become the contact's, unless the contact
    already used the same one (that event keeps its old owner)."""
    other = EVENTS.alias("taken")
    owner = f"c{contact_id}"
    taken = (
        select(other.c.id)
        .where(
            other.c.project_id == EVENTS.c.project_id,
            other.c.event_owner == owner,
            other.c.event_key == EVENTS.c.event_key,
        )
        .exists()
    )
    await tx.execute(
        update(EVENTS)
        .where(where, EVENTS.c.event_key.is_not(None), ~taken)
        .values(contact_id=contact_id, event_owner=owner)
    )
    await tx.execute(update(EVENTS).where(where).values(contact_id=contact_id))


CONVERSATION_COLUMNS = (
    CONVERSATIONS.c.id,
    CONVERSATIONS.c.visitor_row_id,
    CONVERSATIONS.c.contact_id,
    CONVERSATIONS.c.company_id,
    CONVERSATIONS.c.verified_contact_id,
    CONVERSATIONS.c.status,
    CONVERSATIONS.c.created_at,
    CONVERSATIONS.c.last_message_at,
)
MESSAGE_COLUMNS = (
    MESSAGES.c.id,
    MESSAGES.c.conversation_id,
    MESSAGES.c.author,
    MESSAGES.c.author_name,
    MESSAGES.c.body,
    MESSAGES.c.sender_verified,
    MESSAGES.c.created_at,
)


def own_conversations(visitor: VisitorRow) -> Any:
    """The conversations a visitor started under its current contact (or while anonymous)."""
    return and_(
        CONVERSATIONS.c.visitor_row_id == visitor.id,
        CONVERSATIONS.c.contact_id.is_not_distinct_from(visitor.contact_id),
    )


async def open_conversation(tx: Tx, visitor: VisitorRow) -> Any | None:
    query = (
        select(*CONVERSATION_COLUMNS)
        .where(own_conversations(visitor), CONVERSATIONS.c.status == "open")
        .order_by(CONVERSATIONS.c.id.desc())
        .limit(1)
    )
    return (await tx.execute(query)).first()


async def start_conversation(tx: Tx, values: Mapping[str, Any]) -> Any:
    row = {"status": "open", "created_at": tx.now, "last_message_at": tx.now, **values}
    statement = insert(tx, CONVERSATIONS).returning(*CONVERSATION_COLUMNS)
    return (await tx.execute(statement, row)).one()


_CONVERSATION_FOR_UPDATE = (
    select(*CONVERSATION_COLUMNS)
    .where(
        CONVERSATIONS.c.id == bindparam("conversation_id"),
        CONVERSATIONS.c.project_id == bindparam("project_id"),
    )
    .with_for_update()
)


async def conversation_for_update(tx: Tx, *, project_id: int, conversation_id: int) -> Any | None:
    """The project's conversation, locked for this transaction (None: no such one)."""
    params = {"project_id": project_id, "conversation_id": conversation_id}
    return (await tx.execute(_CONVERSATION_FOR_UPDATE, params)).first()


async def set_conversation_status(tx: Tx, conversation_id: int, status: str) -> Any:
    statement = (
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id)
        .values(status=status)
        .returning(*CONVERSATION_COLUMNS)
    )
    return (await tx.execute(statement)).one()


async def touch_conversation(tx: Tx, conversation_id: int, values: Mapping[str, Any]) -> Any:
    statement = (
        update(CONVERSATIONS)
        .where(CONVERSATIONS.c.id == conversation_id)
        .values(last_message_at=tx.now, **values)
        .returning(*CONVERSATION_COLUMNS)
    )
    return (await tx.execute(statement)).one()


async def add_message(tx: Tx, values: Mapping[str, Any]) -> Any:
    statement = insert(tx, MESSAGES).returning(*MESSAGE_COLUMNS)
    return (await tx.execute(statement, {"created_at": tx.now, **values})).one()


def readable_by(visitor: VisitorRow, *, verified: bool) -> Any:
    """The conversations a visitor may read: its own, and, when its binding is verified,
    those its contact started from other visitors verified as the same contact."""
    readable = own_conversations(visitor)
    if verified and visitor.contact_id is not None:
        readable = or_(
            readable,
            and_(
                CONVERSATIONS.c.contact_id == visitor.contact_id,
                CONVERSATIONS.c.verified_contact_id == visitor.contact_id,
            ),
        )
    return readable


async def readable_conversations(
    tx: Tx, *, project_id: int, visitor: VisitorRow, verified: bool, limit: int = 50
) -> list[Any]:
    """The conversations the visitor may read (`readable_by`), newest first."""
    query = (
        select(*CONVERSATION_COLUMNS)
        .where(CONVERSATIONS.c.project_id == project_id, readable_by(visitor, verified=verified))
        .order_by(CONVERSATIONS.c.last_message_at.desc(), CONVERSATIONS.c.id.desc())
        .limit(limit)
    )
    return list(await tx.execute(query))


async def is_readable(
    tx: Tx, *, project_id: int, visitor: VisitorRow, verified: bool, conversation_id: int
) -> bool:
    query = select(CONVERSATIONS.c.id).where(
        CONVERSATIONS.c.id == conversation_id,
        CONVERSATIONS.c.project_id == project_id,
        readable_by(visitor, verified=verified),
    )
    return (await tx.execute(query)).first() is not None


async def messages_of(tx: Tx, conversation_ids: Sequence[int]) -> dict[int, list[Any]]:
    grouped: dict[int, list[Any]] = {cid: [] for cid in conversation_ids}
    if conversation_ids:
        query = (
            select(*MESSAGE_COLUMNS)
            .where(MESSAGES.c.conversation_id.in_(conversation_ids))
            .order_by(MESSAGES.c.conversation_id, MESSAGES.c.id)
        )
        for message in await tx.execute(query):
            grouped[message.conversation_id].append(message)
    return grouped

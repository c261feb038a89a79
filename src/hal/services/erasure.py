"""Erase a person (README "Privacy and data hygiene"): the contact, its visitors and their
properties, events, conversations and messages, links, and every copy of its data in the
change log and the webhook delivery log. Companies and deals stay.

An erasure is two phases. `start_erasure` makes the person unreachable in one short
transaction: the contact's keys and fields are blanked and it is marked `erased_at` (every
read then treats it as gone), its visitors' keys are retired, its links and merge aliases
removed, the suppression written if asked. `finish_erasure` then deletes its rows in bounded
batches, each its own transaction, so a contact with 100,000 events never holds the database
for long; the last batch deletes the contact and records `contact.deleted` (ids only). An
erasure cut short (the process died) is finished by the server's purge task or `hal purge`.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from functools import partial
from typing import Any
from typing import cast as typed

from sqlalchemy import String, Table, and_, cast, delete, literal, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.engine import Database, Tx
from hal.db.models import Contact, Project, Suppression, WebhookEndpoint
from hal.db.queries import locked
from hal.db.store.base import (
    CHANGES,
    CONTACTS,
    CONVERSATIONS,
    EVENTS,
    LINKS,
    MERGES,
    MESSAGES,
    VISITORS,
    WEBHOOK_MESSAGES,
)
from hal.db.types import utcnow
from hal.domain.errors import NotFound
from hal.domain.limits import Limits
from hal.domain.privacy import erased_values, new_suppression_key, suppression_hashes
from hal.domain.validation import parse_email
from hal.services.audit import AUDIT, Actor, record_audit
from hal.services.team import get_contact

ENDPOINTS = typed(Table, WebhookEndpoint.__table__)
BATCH = 1000


@dataclass(frozen=True)
class ErasureStarted:
    project_id: int
    contact_id: int
    suppressed: bool
    user_id_hash: str | None
    email_hash: str | None


@dataclass(frozen=True)
class Person:
    """Who to erase: a contact id, or the contact owning a user_id or an email."""

    contact_id: int | None = None
    user_id: str | None = None
    email: str | None = None


@dataclass(frozen=True)
class Erased:
    started: ErasureStarted
    deleted_rows: int


async def erase(
    database: Database, *, project: Project, person: Person, suppress: bool, actor: Actor
) -> Erased:
    """Both phases: the person unreachable at once, then their rows in bounded batches."""

    async def start(session: AsyncSession) -> ErasureStarted:
        contact_id = person.contact_id
        if contact_id is None:
            contact_id = await _contact_by_key(session, project, person)
        return await start_erasure(
            session=session, project=project, contact_id=contact_id, suppress=suppress, actor=actor
        )

    started = await database.transaction(start)
    deleted = await finish_erasure(
        database, project_id=started.project_id, contact_id=started.contact_id
    )
    return Erased(started, deleted)


async def _contact_by_key(session: AsyncSession, project: Project, person: Person) -> int:
    query = select(Contact.id).where(Contact.project_id == project.id, Contact.erased_at.is_(None))
    if person.email is not None:
        key = parse_email(person.email, limits=Limits()).normalized
        query = query.where(Contact.email_normalized == key)
    else:
        query = query.where(Contact.user_id == person.user_id)
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        raise NotFound("unknown_contact", "no contact like this in the project")
    return int(found)


async def start_erasure(
    *, session: AsyncSession, project: Project, contact_id: int, suppress: bool, actor: Actor
) -> ErasureStarted:
    """Make the contact unreachable and blank its fields, in one short transaction."""
    contact = await get_contact(session=session, project=project, contact_id=contact_id)
    locked_contact = (
        await session.execute(locked(select(Contact).where(Contact.id == contact.id)))
    ).scalar_one()
    now = utcnow()
    user_id_hash = email_hash = None
    if suppress and (locked_contact.user_id or locked_contact.email_normalized):
        project = (
            await session.execute(locked(select(Project).where(Project.id == project.id)))
        ).scalar_one()
        if project.suppression_key is None:
            project.suppression_key = new_suppression_key()
        user_id_hash, email_hash = suppression_hashes(
            project.suppression_key,
            user_id=locked_contact.user_id,
            email_key=locked_contact.email_normalized,
        )
        person = user_id_hash or email_hash
        session.add(
            Suppression(
                project_id=project.id,
                user_id_hash=user_id_hash,
                email_hash=email_hash,
                person=person,
                created_at=now,
            )
        )
        # Emails of contacts merged into this one still reach it: they are the person's too.
        aliases = await session.execute(
            select(MERGES.c.email_normalized).where(
                MERGES.c.into_contact_id == contact.id, MERGES.c.email_normalized.is_not(None)
            )
        )
        for alias in aliases.scalars():
            _, alias_hash = suppression_hashes(
                project.suppression_key, user_id=None, email_key=alias
            )
            session.add(
                Suppression(
                    project_id=project.id, email_hash=alias_hash, person=person, created_at=now
                )
            )
    locked_contact.user_id = None
    locked_contact.name = None
    locked_contact.email = None
    locked_contact.email_normalized = None
    locked_contact.metadata_ = {}
    locked_contact.erased_at = now
    await session.flush()
    await session.execute(
        update(VISITORS)
        .where(VISITORS.c.contact_id == contact.id)
        .values(
            visitor_key=literal("erased:", String) + cast(VISITORS.c.id, String(32)),
            properties={},
            active_company_id=None,
            signed_company_ids=None,
        )
    )
    await session.execute(delete(LINKS).where(LINKS.c.contact_id == contact.id))
    # The contacts merged into it stay known (their change log copies are the person's too)
    # until the contact itself is deleted, but their emails no longer reach anyone.
    await session.execute(
        update(MERGES).where(MERGES.c.into_contact_id == contact.id).values(email_normalized=None)
    )
    await _erase_audit_values(session, project_id=project.id, contact_id=contact.id)
    await record_audit(
        session,
        project_id=project.id,
        actor=actor,
        action="contact.erased",
        target=str(contact.id),
        changes={"suppressed": user_id_hash is not None or email_hash is not None},
        now=now,
    )
    return ErasureStarted(
        project.id,
        contact.id,
        user_id_hash is not None or email_hash is not None,
        user_id_hash,
        email_hash,
    )


# The audit actions whose changes hold a person's values (old and new names, metadata).
_PERSONAL_AUDIT_ACTIONS = ("contact.updated",)


async def _erase_audit_values(session: AsyncSession, *, project_id: int, contact_id: int) -> None:
    """The audit log keeps who did what to the person, and which fields, but not the values:
    of the contact and of every contact merged into it."""
    merged = select(cast(MERGES.c.from_contact_id, String(255))).where(
        MERGES.c.into_contact_id == contact_id
    )
    entries = await session.execute(
        select(AUDIT.c.id, AUDIT.c.changes).where(
            AUDIT.c.project_id == project_id,
            AUDIT.c.action.in_(_PERSONAL_AUDIT_ACTIONS),
            or_(AUDIT.c.target == str(contact_id), AUDIT.c.target.in_(merged)),
        )
    )
    for entry in entries:
        await session.execute(
            update(AUDIT).where(AUDIT.c.id == entry.id).values(changes=erased_values(entry.changes))
        )


def _visitors_of(contact_id: int) -> Any:
    return select(VISITORS.c.id).where(VISITORS.c.contact_id == contact_id)


def _conversations_of(contact_id: int) -> Any:
    return select(CONVERSATIONS.c.id).where(
        or_(
            CONVERSATIONS.c.contact_id == contact_id,
            and_(
                CONVERSATIONS.c.contact_id.is_(None),
                CONVERSATIONS.c.visitor_row_id.in_(_visitors_of(contact_id)),
            ),
        )
    )


def _batches(project_id: int, contact_id: int) -> list[tuple[Table, Any, Any]]:
    """(table, its key column, which of its rows are the person's), in deletion order.

    A change or delivery names the person by `contact_id`: its own, one merged into it, or,
    written while a visitor was anonymous, the contact the visitor first identified as
    (identify carries those over). Rows still naming only a visitor of the contact are
    the person's too. A delivery is also the person's when its change is, in case it was
    copied before the change was carried over; so deliveries go before changes."""
    visitors = _visitors_of(contact_id)
    conversations = _conversations_of(contact_id)
    merged = select(MERGES.c.from_contact_id).where(MERGES.c.into_contact_id == contact_id)
    changes = and_(
        CHANGES.c.project_id == project_id,
        or_(
            CHANGES.c.contact_id == contact_id,
            CHANGES.c.contact_id.in_(merged),
            and_(CHANGES.c.contact_id.is_(None), CHANGES.c.visitor_row_id.in_(visitors)),
        ),
    )
    endpoints = select(ENDPOINTS.c.id).where(ENDPOINTS.c.project_id == project_id)
    return [
        (EVENTS, EVENTS.c.id, EVENTS.c.contact_id == contact_id),
        (
            EVENTS,
            EVENTS.c.id,
            and_(EVENTS.c.visitor_row_id.in_(visitors), EVENTS.c.contact_id.is_(None)),
        ),
        (MESSAGES, MESSAGES.c.id, MESSAGES.c.conversation_id.in_(conversations)),
        (CONVERSATIONS, CONVERSATIONS.c.id, CONVERSATIONS.c.id.in_(conversations)),
        (
            WEBHOOK_MESSAGES,
            WEBHOOK_MESSAGES.c.id,
            or_(
                WEBHOOK_MESSAGES.c.contact_id == contact_id,
                WEBHOOK_MESSAGES.c.contact_id.in_(merged),
                and_(
                    WEBHOOK_MESSAGES.c.contact_id.is_(None),
                    WEBHOOK_MESSAGES.c.visitor_row_id.in_(visitors),
                ),
                and_(
                    WEBHOOK_MESSAGES.c.endpoint_id.in_(endpoints),
                    WEBHOOK_MESSAGES.c.change_id.in_(select(CHANGES.c.id).where(changes)),
                ),
            ),
        ),
        (CHANGES, CHANGES.c.seq, changes),  # numbered or not yet
    ]


async def delete_batch(tx: Tx, *, table: Table, key: Any, where: Any, batch: int) -> int:
    """Delete up to `batch` rows of `table` matching `where`; how many went."""
    ids = [row[0] for row in await tx.execute(select(key).where(where).limit(batch))]
    if not ids:
        return 0
    await tx.execute(delete(table).where(key.in_(ids), where))
    return len(ids)


async def finish_erasure(
    database: Database, *, project_id: int, contact_id: int, batch: int = BATCH
) -> int:
    """Delete the erased contact's rows in bounded batches, each its own transaction, then the
    contact itself with its `contact.deleted` change. Returns how many rows were deleted."""
    deleted = 0
    for table, key, where in _batches(project_id, contact_id):
        while True:
            removed = await database.run(
                partial(delete_batch, table=table, key=key, where=where, batch=batch)
            )
            deleted += removed
            await asyncio.sleep(0)  # let waiting requests have the database between batches
            if removed < batch:
                break
    return deleted + await database.run(
        lambda tx: _delete_contact(tx, project_id=project_id, contact_id=contact_id)
    )


async def _delete_contact(tx: Tx, *, project_id: int, contact_id: int) -> int:
    """The last step: what the batches' race with new writes left, the visitors, the contact.
    The project's webhook endpoints are locked first, so a fan-out cannot copy a change of the
    person into a message after its messages were deleted."""
    if tx.is_postgres:
        await tx.execute(
            select(ENDPOINTS.c.id).where(ENDPOINTS.c.project_id == project_id).with_for_update()
        )
    deleted = 0
    for table, key, where in _batches(project_id, contact_id):
        while removed := await delete_batch(tx, table=table, key=key, where=where, batch=BATCH):
            deleted += removed
    visitors = await tx.execute(delete(VISITORS).where(VISITORS.c.contact_id == contact_id))
    gone = await tx.execute(
        delete(CONTACTS).where(CONTACTS.c.id == contact_id, CONTACTS.c.erased_at.is_not(None))
    )
    if gone.rowcount:
        tx.record(project_id, "contact.deleted", {"id": contact_id})
    return deleted + int(visitors.rowcount or 0) + int(gone.rowcount or 0)


async def unfinished_erasures(database: Database, *, limit: int = 100) -> list[tuple[int, int]]:
    """(project row id, contact id) of erasures started and not finished."""
    query = (
        select(CONTACTS.c.project_id, CONTACTS.c.id)
        .where(CONTACTS.c.erased_at.is_not(None))
        .order_by(CONTACTS.c.id)
        .limit(limit)
    )

    async def read(tx: Tx) -> list[tuple[int, int]]:
        return [(row.project_id, row.id) for row in await tx.execute(query)]

    return await database.run(read)


async def finish_unfinished_erasures(database: Database) -> int:
    """Finish every erasure a stopped process left half done; the number finished."""
    pending = await unfinished_erasures(database)
    for project_id, contact_id in pending:
        await finish_erasure(database, project_id=project_id, contact_id=contact_id)
    return len(pending)

"""Erasure's and retention's writes: a person made unreachable, which rows are theirs, and
deleting rows in bounded batches."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, cast

from sqlalchemy import String, Table, and_, delete, literal, or_, select, update
from sqlalchemy import cast as sql_cast

from hal.db.engine import Tx
from hal.db.models import ImportFailedRow, ImportJob, WebhookEndpoint
from hal.db.store.base import (
    CHANGES,
    CONTACT_COLUMNS,
    CONTACTS,
    CONVERSATIONS,
    EVENTS,
    LINKS,
    MERGES,
    MESSAGES,
    VISITORS,
    WEBHOOK_MESSAGES,
    ContactRow,
)
from hal.domain.privacy import names_person

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
IMPORT_JOBS = cast(Table, ImportJob.__table__)
IMPORT_FAILURES = cast(Table, ImportFailedRow.__table__)


async def live_contact_for_update(tx: Tx, contact_id: int) -> ContactRow | None:
    """The contact, locked, unless it is gone (merged away, or being erased)."""
    query = (
        select(*CONTACT_COLUMNS)
        .where(CONTACTS.c.id == contact_id, CONTACTS.c.erased_at.is_(None))
        .with_for_update()
    )
    row = (await tx.execute(query)).first()
    return ContactRow.of(row) if row is not None else None


async def alias_emails(tx: Tx, contact_id: int) -> list[str]:
    """Emails of contacts merged into this one, which still reach it."""
    rows = await tx.execute(
        select(MERGES.c.email_normalized).where(
            MERGES.c.into_contact_id == contact_id, MERGES.c.email_normalized.is_not(None)
        )
    )
    return [str(email) for email in rows.scalars()]


async def make_unreachable(tx: Tx, contact_id: int) -> None:
    """Blank the contact and mark it erased; retire its visitors' keys; drop its links and
    the emails merged into it. Every read treats it as gone from here on."""
    await tx.execute(
        update(CONTACTS)
        .where(CONTACTS.c.id == contact_id)
        .values(
            user_id=None,
            name=None,
            email=None,
            email_normalized=None,
            search_name=None,
            search_user_id=None,
            search_email=None,
            search_metadata={},
            metadata={},
            erased_at=tx.now,
        )
    )
    await tx.execute(
        update(VISITORS)
        .where(VISITORS.c.contact_id == contact_id)
        .values(
            visitor_key=literal("erased:", String) + sql_cast(VISITORS.c.id, String(32)),
            properties={},
            active_company_id=None,
            signed_company_ids=None,
        )
    )
    await tx.execute(delete(LINKS).where(LINKS.c.contact_id == contact_id))
    # The contacts merged into it stay known (their change log copies are the person's too)
    # until the contact itself is deleted, but their emails no longer reach anyone.
    await tx.execute(
        update(MERGES).where(MERGES.c.into_contact_id == contact_id).values(email_normalized=None)
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


def persons_rows(project_id: int, contact_id: int) -> list[tuple[Table, Any, Any]]:
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


async def lock_endpoints(tx: Tx, project_id: int) -> None:
    """Hold off the project's webhook fan-out (PostgreSQL) until this transaction ends."""
    if tx.is_postgres:
        await tx.execute(
            select(ENDPOINTS.c.id).where(ENDPOINTS.c.project_id == project_id).with_for_update()
        )


async def delete_erased_contact(tx: Tx, contact_id: int) -> tuple[int, bool]:
    """The erased contact's visitors and the contact itself: (rows deleted, whether the
    contact went now)."""
    visitors = await tx.execute(delete(VISITORS).where(VISITORS.c.contact_id == contact_id))
    gone = await tx.execute(
        delete(CONTACTS).where(CONTACTS.c.id == contact_id, CONTACTS.c.erased_at.is_not(None))
    )
    return int(visitors.rowcount or 0) + int(gone.rowcount or 0), bool(gone.rowcount)


async def erasures_left(tx: Tx, *, limit: int) -> list[tuple[int, int]]:
    """(project row id, contact id) of erasures started and not finished."""
    query = (
        select(CONTACTS.c.project_id, CONTACTS.c.id)
        .where(CONTACTS.c.erased_at.is_not(None))
        .order_by(CONTACTS.c.id)
        .limit(limit)
    )
    return [(row.project_id, row.id) for row in await tx.execute(query)]


async def forget_failed_import_rows(
    tx: Tx, *, project_id: int, user_ids: Sequence[str], emails: Sequence[str]
) -> int:
    """Delete the project's failed import rows that name the person (`names_person`): kept
    as sent, for the import's retention, they hold the person's values outside the contact.
    Returns how many were deleted."""
    kept = await tx.execute(
        select(IMPORT_FAILURES.c.id, IMPORT_FAILURES.c.row)
        .join(IMPORT_JOBS, IMPORT_JOBS.c.id == IMPORT_FAILURES.c.job_id)
        .where(IMPORT_JOBS.c.project_id == project_id)
    )
    keys, addresses = frozenset(user_ids), frozenset(emails)
    ids = [r.id for r in kept if names_person(r.row, user_ids=keys, emails=addresses)]
    for start in range(0, len(ids), 500):
        await tx.execute(
            delete(IMPORT_FAILURES).where(IMPORT_FAILURES.c.id.in_(ids[start : start + 500]))
        )
    return len(ids)

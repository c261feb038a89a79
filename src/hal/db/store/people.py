"""Visitors and contacts: upsert, look up by key, write, bind, carry over, merge a lead."""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Table,
    and_,
    bindparam,
    cast,
    delete,
    null,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.sql import Select

from hal.db.engine import Tx
from hal.db.prepared import Prepared, prepared
from hal.db.store.base import (
    CHANGES,
    COMPANIES,
    COMPANY_COLUMNS,
    CONTACT_COLUMNS,
    CONTACTS,
    CONVERSATIONS,
    EVENTS,
    LINKS,
    MERGES,
    PROJECTS,
    VISITORS,
    WEBHOOK_MESSAGES,
    CompanyRow,
    ContactRow,
    VisitorRow,
    insert,
    per_dialect,
    with_search_copies,
)
from hal.db.store.lookahead import ahead_of, needs_database
from hal.db.store.timeline import move_events
from hal.domain.matching import seen_recently

_VISITOR_COLUMNS = (
    VISITORS.c.id,
    VISITORS.c.visitor_key,
    VISITORS.c.contact_id,
    VISITORS.c.active_company_id,
    VISITORS.c.properties,
    VISITORS.c.verified,
    VISITORS.c.signed_company_ids,
    VISITORS.c.created_at,
)
_VISITOR_BY_KEY = (
    VISITORS.c.project_id == bindparam("project_id"),
    VISITORS.c.visitor_key == bindparam("visitor_key"),
)


def _visitor(row: Any, stamp: datetime | None) -> VisitorRow:
    return VisitorRow(
        id=row.id,
        visitor_key=row.visitor_key,
        contact_id=row.contact_id,
        active_company_id=row.active_company_id,
        properties=row.properties,
        verified=row.verified,
        signed_company_ids=row.signed_company_ids,
        created=stamp is not None and row.created_at == stamp,
    )


def _visitor_upsert(insert: Callable[[Table], Any]) -> Any:
    statement = insert(VISITORS)
    return statement.on_conflict_do_update(
        index_elements=[VISITORS.c.project_id, VISITORS.c.visitor_key],
        set_={"last_seen_at": statement.excluded.last_seen_at},
    ).returning(*_VISITOR_COLUMNS)


def _visitor_upsert_and_key(insert: Callable[[Table], Any]) -> Any:
    """PostgreSQL: the visitor upsert, with the project's suppression key as it is when it
    runs."""
    return _visitor_upsert(insert).returning(
        select(PROJECTS.c.suppression_key)
        .where(PROJECTS.c.id == bindparam("project_row_id"))
        .scalar_subquery()
        .label("suppression_key")
    )


_upsert_visitor = per_dialect(_visitor_upsert)


async def upsert_visitor(tx: Tx, *, project_id: int, visitor_key: str) -> VisitorRow:
    """The visitor, created on first sight, seen now, and locked for this transaction (one
    statement: the conflict update takes the row lock on PostgreSQL); `created` says whether
    this call made it."""
    values = _new_visitor(tx, project_id, visitor_key)
    row = (await tx.execute(_upsert_visitor(tx), values)).one()
    return _visitor(row, values["created_at"])


def _new_visitor(tx: Tx, project_id: int, visitor_key: str) -> dict[str, Any]:
    """A visitor upsert's values: created now, with this call's stamp (`created`)."""
    return {"project_id": project_id, "visitor_key": visitor_key, "properties": {},
            "verified": False, "created_at": tx.stamp(), "last_seen_at": tx.now}  # fmt: skip


_FIND_VISITOR = prepared(select(*_VISITOR_COLUMNS).where(*_VISITOR_BY_KEY))


async def find_visitor(tx: Tx, *, project_id: int, visitor_key: str) -> VisitorRow | None:
    """The visitor if it exists (read-only calls never create one)."""
    params = {"project_id": project_id, "visitor_key": visitor_key}
    row = (await tx.execute(_FIND_VISITOR, params)).first()
    return _visitor(row, None) if row is not None else None


_UPDATE_VISITOR = prepared(update(VISITORS).where(VISITORS.c.id == bindparam("visitor_row_id")))


async def update_visitor(tx: Tx, visitor_row_id: int, **values: Any) -> None:
    if values:
        await tx.write(_UPDATE_VISITOR, {"visitor_row_id": visitor_row_id, **values})


# SQLite: the visitor and its contact in one read (its transaction holds the database's write
# lock from BEGIN IMMEDIATE: there are no row locks to take).
_VISITOR_AND_CONTACT = prepared(
    select(
        *(column.label(f"v_{column.name}") for column in _VISITOR_COLUMNS),
        VISITORS.c.last_seen_at.label("v_seen_at"),
        *(column.label(f"c_{column.name}") for column in CONTACT_COLUMNS),
    )
    .select_from(VISITORS.outerjoin(CONTACTS, CONTACTS.c.id == VISITORS.c.contact_id))
    .where(*_VISITOR_BY_KEY)
)
# PostgreSQL: the visitor locked as the upsert's conflict update locks it; its contact after.
_VISITOR_LOCKED = prepared(
    select(*_VISITOR_COLUMNS, VISITORS.c.last_seen_at.label("seen_at"))
    .where(*_VISITOR_BY_KEY)
    .with_for_update()
)


async def open_visitor(
    tx: Tx, *, project_id: int, visitor_key: str
) -> tuple[VisitorRow, ContactRow | None]:
    """The visitor (created on first sight) and its contact, locked for this transaction as
    `upsert_visitor` and `contact_by_id` lock them, for a call that is not an identify. The
    visitor's `last_seen_at` is written at most once a minute (hal.domain.matching.SEEN_EVERY):
    a known visitor seen within the minute costs one read on SQLite, two on PostgreSQL."""
    params = {"project_id": project_id, "visitor_key": visitor_key}
    contact = None
    if tx.is_postgres:
        row = (await tx.execute(_VISITOR_LOCKED, params)).first()
        found = None if row is None else (_visitor(row, None), row.seen_at)
    else:
        row = (await tx.execute(_VISITOR_AND_CONTACT, params)).first()
        found = None if row is None else (_joined_visitor(row), row.v_seen_at)
        if row is not None and row.c_id is not None:
            contact = ContactRow(*row[_CONTACT_AT])
    if found is None:
        visitor = await upsert_visitor(tx, project_id=project_id, visitor_key=visitor_key)
    else:
        visitor, seen_at = found
        if not seen_recently(seen_at, tx.now):
            await update_visitor(tx, visitor.id, last_seen_at=tx.now)
    if contact is None and visitor.contact_id is not None:
        contact = await contact_by_id(tx, visitor.contact_id)
    return visitor, contact


_CONTACT_BY_ID = select(*CONTACT_COLUMNS).where(CONTACTS.c.id == bindparam("contact_id"))
_CONTACT = {
    False: prepared(_CONTACT_BY_ID),
    True: prepared(_CONTACT_BY_ID.with_for_update(key_share=True)),
}


async def contact_by_id(tx: Tx, contact_id: int, *, lock: bool = True) -> ContactRow | None:
    row = (await tx.execute(_CONTACT[lock], {"contact_id": contact_id})).first()
    return ContactRow.of(row) if row is not None else None


@dataclass(frozen=True)
class Returning:
    """A visitor bound to a live contact, with the contact's linked companies (by external
    id) and when each was last seen: what a repeat identify compares its request with."""

    visitor: VisitorRow
    visitor_seen_at: datetime
    contact: ContactRow
    companies: list[CompanyRow]
    # The rows as read (the driver's values): equal rows read again make an equal Returning.
    rows: Sequence[Sequence[Any]] = ()


_RETURNING = prepared(
    select(
        *(column.label(f"v_{column.name}") for column in _VISITOR_COLUMNS),
        VISITORS.c.last_seen_at.label("v_seen_at"),
        *(column.label(f"c_{column.name}") for column in CONTACT_COLUMNS),
        *(column.label(f"co_{column.name}") for column in COMPANY_COLUMNS),
    )
    .select_from(
        VISITORS.join(
            CONTACTS, and_(CONTACTS.c.id == VISITORS.c.contact_id, CONTACTS.c.erased_at.is_(None))
        )
        .outerjoin(LINKS, LINKS.c.contact_id == CONTACTS.c.id)
        .outerjoin(COMPANIES, COMPANIES.c.id == LINKS.c.company_id)
    )
    .where(*_VISITOR_BY_KEY)
    .order_by(COMPANIES.c.external_id),
    unlocked_read=True,
)


async def returning_visitor(tx: Tx, *, project_id: int, visitor_key: str) -> Returning | None:
    """The visitor, its bound contact and the contact's companies, in one statement and
    without a lock (a repeat identify only reads); None when the visitor is not bound to a
    live contact."""
    params = {"project_id": project_id, "visitor_key": visitor_key}
    fetched = await tx.execute(_RETURNING, params)
    rows = fetched.rows
    if not rows:
        return None
    first = rows[0]
    visitor, contact = _joined_visitor(first), ContactRow(*first[_CONTACT_AT])
    companies = [CompanyRow(*row[_COMPANY_AT]) for row in rows if row.co_id is not None]
    return Returning(visitor, first.v_seen_at, contact, companies, fetched.raw)


async def returning_rows(tx: Tx, *, project_id: int, visitor_key: str) -> Sequence[Any]:
    """`returning_visitor`'s rows as the driver gives them, unprocessed: to compare with the
    `rows` of a Returning read before."""
    params = {"project_id": project_id, "visitor_key": visitor_key}
    return (await tx.execute(_RETURNING, params)).raw


def _joined_visitor(row: Sequence[Any], created: bool = False) -> VisitorRow:
    """The visitor of a row of _RETURNING, _VISITOR_AND_CONTACT or `_visitor_and_contacts`."""
    id_, key, contact_id, active_id, properties, verified, signed = row[_VISITOR_AT]
    return VisitorRow(id_, key, contact_id, active_id, properties, verified, signed, created)


# Where each row type's fields sit in the rows of _RETURNING and _VISITOR_AND_CONTACT (their
# columns are in this order).
_VISITOR_AT = slice(0, len(_VISITOR_COLUMNS) - 1)  # created_at: not a VisitorRow field
_CONTACT_AT = slice(len(_VISITOR_COLUMNS) + 1, len(_VISITOR_COLUMNS) + 1 + len(CONTACT_COLUMNS))
_COMPANY_AT = slice(_CONTACT_AT.stop, None)


# The contact an email was merged into while `into` kept its own email (services/merge.py):
# a scalar subquery, so PostgreSQL evaluates it once and still looks contacts up by index.
_ALIAS_OF = (
    select(MERGES.c.into_contact_id)
    .where(
        MERGES.c.project_id == bindparam("project_id"),
        MERGES.c.email_normalized == bindparam("email_normalized"),
    )
    .limit(1)
    .scalar_subquery()
)


def _contacts_of(by_user_id: bool, by_email: bool, bound: Any) -> Select[Any]:
    """The locked read of `contacts_by_keys`; `bound`: the bound contact's id, if any."""
    # The project is stated in every branch, each one a unique index's full key: SQLite then
    # reads each by its index (MULTI-INDEX OR) even without table statistics. With
    # `project_id = ? AND (a OR b)` it scanned the project's contacts instead.
    project = CONTACTS.c.project_id == bindparam("project_id")
    keys = []
    if by_user_id:
        keys.append(and_(project, CONTACTS.c.user_id == bindparam("user_id")))
    if by_email:
        keys.append(and_(project, CONTACTS.c.email_normalized == bindparam("email_normalized")))
        keys.append(and_(CONTACTS.c.id == _ALIAS_OF, project))
    if bound is not None:
        keys.append(and_(CONTACTS.c.id == bound, project))
    alias = _ALIAS_OF if by_email else null()
    return (
        select(*CONTACT_COLUMNS, alias.label("alias_of"))
        .where(or_(*keys))
        .with_for_update(key_share=True, of=CONTACTS)
    )


@functools.cache
def _contacts_by_keys(by_user_id: bool, by_email: bool, by_id: bool) -> Prepared:
    return prepared(_contacts_of(by_user_id, by_email, bindparam("contact_id") if by_id else None))


async def contacts_by_keys(
    tx: Tx,
    *,
    project_id: int,
    user_id: str | None,
    email_normalized: str | None,
    contact_id: int | None,
) -> tuple[list[ContactRow], int | None]:
    """In one locked read: the contacts owning the user_id and the email, and the visitor's
    bound contact; and the contact the email was merged into, if it was (also read). FOR NO
    KEY UPDATE on PostgreSQL, so a link insert's KEY SHARE lock on a contact never deadlocks
    with it."""
    if (ahead := ahead_of(tx)) is not None and contact_id is None:
        return ahead.people_of(user_id, email_normalized)
    needs_database(tx)
    query = _contacts_by_keys(
        user_id is not None, email_normalized is not None, contact_id is not None
    )
    params = {
        "project_id": project_id,
        "user_id": user_id,
        "email_normalized": email_normalized,
        "contact_id": contact_id,
    }
    rows = list(await tx.execute(query, params))
    alias_of = next((row.alias_of for row in rows if row.alias_of is not None), None)
    return [ContactRow.of(row) for row in rows], alias_of


@dataclass(frozen=True)
class Identified:
    """identify's visitor and the contacts its identity and binding name (as
    `contacts_by_keys` reads them), and the project's suppression key when it was asked for."""

    visitor: VisitorRow
    candidates: list[ContactRow]
    alias_of: int | None
    suppression_key: str | None = None


@functools.cache
def _visitor_and_contacts(by_user_id: bool, by_email: bool, with_key: bool) -> Prepared:
    """PostgreSQL: the visitor upserted as `upsert_visitor` does (with the suppression key,
    `_visitor_upsert_and_key`) and the contacts `contacts_by_keys` reads, its bound one named
    by the upsert's answer, in one statement: a row per contact, or one without."""
    insert = pg_insert(VISITORS).values(
        {name: bindparam(name, type_=VISITORS.c[name].type) for name in _NEW_VISITOR_COLUMNS}
    )
    upserted = (_visitor_upsert_and_key if with_key else _visitor_upsert)(lambda _: insert)
    visitor = upserted.cte("visitor")
    bound = select(visitor.c.contact_id).scalar_subquery()
    found = _contacts_of(by_user_id, by_email, bound).cte("found")
    return prepared(
        select(
            *(column.label(f"v_{column.name}") for column in visitor.c),
            *(column.label(f"c_{column.name}") for column in found.c),
        ).select_from(visitor.outerjoin(found, true()))
    )


_NEW_VISITOR_COLUMNS = (
    "project_id", "visitor_key", "properties", "verified", "created_at", "last_seen_at"
)  # fmt: skip


async def upsert_visitor_and_contacts(
    tx: Tx,
    *,
    project_id: int,
    visitor_key: str,
    user_id: str | None,
    email_normalized: str | None,
    with_key: bool,
) -> Identified:
    """PostgreSQL: `upsert_visitor` then `contacts_by_keys` for its bound contact (one round
    trip instead of two); `with_key`: with the project's suppression key as it now is.

    The contacts are read in the statement's snapshot, taken before the upsert waits for a
    visitor locked by another transaction. The candidates by user_id and email are the same
    either way (the identity's advisory locks, taken before, hold back every writer of
    them), and a row found is locked in its latest version; but a contact the visitor was
    bound to meanwhile may be newer than the snapshot: it is then read on its own."""
    params = _new_visitor(tx, project_id, visitor_key)
    params.update(user_id=user_id, email_normalized=email_normalized, project_row_id=project_id)
    query = _visitor_and_contacts(user_id is not None, email_normalized is not None, with_key)
    rows = (await tx.execute(query, params)).rows
    first = rows[0]
    visitor = _joined_visitor(first, created=first.v_created_at == params["created_at"])
    contact_at = slice(-len(CONTACT_COLUMNS) - 1, -1)  # the contact's, then alias_of
    candidates = [ContactRow(*row[contact_at]) for row in rows if row.c_id is not None]
    alias_of = next((row.c_alias_of for row in rows if row.c_alias_of is not None), None)
    bound = visitor.contact_id
    if bound is not None and all(contact.id != bound for contact in candidates):
        contact = await contact_by_id(tx, bound)
        candidates.extend([contact] if contact is not None else [])
    key = first.v_suppression_key if with_key else None
    return Identified(visitor, candidates, alias_of, key)


def search_keys(values: dict[str, Any]) -> dict[str, Any]:
    """A contact's values with their case-folded copies: name, user_id, email, metadata."""
    return with_search_copies(values, _SEARCH_COLUMNS)


_SEARCH_COLUMNS = {
    "name": "search_name",
    "user_id": "search_user_id",
    "email_normalized": "search_email",
}


@per_dialect
def _insert_contact(insert: Callable[[Table], Any]) -> Any:
    return insert(CONTACTS).returning(CONTACTS.c.id)


async def insert_contact(tx: Tx, *, project_id: int, values: dict[str, Any]) -> int:
    row = {
        "project_id": project_id,
        "metadata": {},
        "search_metadata": {},
        "verified": False,
        "email_verified": False,
        "created_at": tx.now,
        "last_seen_at": tx.now,
        **search_keys(values),
    }
    if (ahead := ahead_of(tx)) is not None:  # an import chunk's: written with the chunk
        contact_id = await ahead.next_id(tx, CONTACTS)
        ahead.contact_created(contact_id, row, tx.now)
        return contact_id
    return int((await tx.execute(_insert_contact(tx), row)).scalar_one())


_UPDATE_CONTACT = prepared(update(CONTACTS).where(CONTACTS.c.id == bindparam("contact_row_id")))


async def update_contact(tx: Tx, contact_id: int, values: dict[str, Any]) -> None:
    if not values:
        return
    if (ahead := ahead_of(tx)) is not None:
        ahead.contact_written(contact_id, search_keys(values))
        return
    await tx.write(_UPDATE_CONTACT, {"contact_row_id": contact_id, **search_keys(values)})


async def carry_over(tx: Tx, *, project_id: int, visitor_row_id: int, contact_id: int) -> None:
    """What an anonymous visitor collected (events, conversations, and the copies of them in
    the change log and the webhook delivery log) now belongs to the contact: erasing the
    contact erases it, whichever contact the visitor belongs to later."""
    anonymous = and_(EVENTS.c.visitor_row_id == visitor_row_id, EVENTS.c.contact_id.is_(None))
    await move_events(tx, where=anonymous, contact_id=contact_id)
    project = CHANGES.c.project_id == project_id  # the change log's index leads with it
    for table, scope in ((CONVERSATIONS, None), (CHANGES, project), (WEBHOOK_MESSAGES, None)):
        await tx.execute(
            update(table)
            .where(
                table.c.visitor_row_id == visitor_row_id,
                table.c.contact_id.is_(None),
                *([scope] if scope is not None else []),
            )
            .values(contact_id=contact_id)
        )


async def merge_lead(tx: Tx, *, lead_id: int, into_id: int, alias: str | None = None) -> None:
    """Move a lead's timeline, visitors, conversations and links to `into`, then delete it
    (which frees its email for `into`). Its id is remembered as merged into `into` (its
    team API address answers 410; erasing `into` erases what the change log holds of it)."""
    needs_database(tx)
    await move_events(tx, where=EVENTS.c.contact_id == lead_id, contact_id=into_id)
    for table in (VISITORS, CONVERSATIONS):
        await tx.execute(
            update(table).where(table.c.contact_id == lead_id).values(contact_id=into_id)
        )
    moved = select(
        cast(bindparam("into_id"), BigInteger), LINKS.c.company_id, LINKS.c.created_at
    ).where(LINKS.c.contact_id == bindparam("lead_id"))
    statement = (
        insert(tx, LINKS)
        .from_select(["contact_id", "company_id", "created_at"], moved)
        .on_conflict_do_nothing(index_elements=[LINKS.c.contact_id, LINKS.c.company_id])
    )
    await tx.execute(statement, {"into_id": into_id, "lead_id": lead_id})
    await tx.execute(delete(LINKS).where(LINKS.c.contact_id == lead_id))
    await tx.execute(
        update(MERGES).where(MERGES.c.into_contact_id == lead_id).values(into_contact_id=into_id)
    )
    lead_project = select(CONTACTS.c.project_id).where(CONTACTS.c.id == lead_id)
    await tx.execute(
        insert(tx, MERGES).values(
            from_contact_id=lead_id,
            project_id=lead_project.scalar_subquery(),
            into_contact_id=into_id,
            email_normalized=alias,
            created_at=tx.now,
        )
    )
    await tx.execute(delete(CONTACTS).where(CONTACTS.c.id == lead_id))

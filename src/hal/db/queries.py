"""Queries shared by several use cases; plain functions over an AsyncSession."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar, cast

from sqlalchemy import Select, Table, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.schema import CallableColumnDefault

from hal.db.models import Base, Company, Contact, ContactCompany, Project

SelectT = TypeVar("SelectT", bound=Select[Any])


def locked(query: SelectT) -> SelectT:
    """Lock the selected rows for this transaction (PostgreSQL; SQLite has one writer).

    FOR NO KEY UPDATE, not FOR UPDATE: inserting a link or an event takes a KEY SHARE lock on
    the parent row, which FOR UPDATE conflicts with; two identifies linking one company would
    then deadlock. Re-reads the row so a waiter sees the winner's write.
    """
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


async def insert_ignoring_conflict(
    session: AsyncSession, model: type[Base], rows: Sequence[dict[str, Any]], keys: Sequence[str]
) -> int:
    """INSERT ... ON CONFLICT DO NOTHING: the race-free way to "create unless it exists".
    Returns how many rows were inserted."""
    if not rows:
        return 0
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    table = cast(Table, model.__table__)
    full_rows = []
    for row in rows:
        full = dict(row)
        for column in table.columns:
            default = column.default
            # A multi-row VALUES needs every column in every row: fill Python-side defaults.
            if column.key not in full and isinstance(default, CallableColumnDefault):
                full[column.key] = default.arg(cast(Any, None))  # no context needed
        full_rows.append(full)
    statement = insert(table).values(full_rows).on_conflict_do_nothing(index_elements=list(keys))
    result = await session.execute(statement)
    return int(getattr(result, "rowcount", 0) or 0)


async def project_by_app_id(session: AsyncSession, app_id: str) -> Project | None:
    result = await session.execute(select(Project).where(Project.app_id == app_id))
    return result.scalar_one_or_none()


async def contact_for_update(session: AsyncSession, contact_id: int) -> Contact | None:
    query = locked(select(Contact).where(Contact.id == contact_id))
    return (await session.execute(query)).scalar_one_or_none()


async def linked_companies(session: AsyncSession, contact_id: int) -> list[Company]:
    query = (
        select(Company)
        .join(ContactCompany, ContactCompany.company_id == Company.id)
        .where(ContactCompany.contact_id == contact_id)
        .order_by(Company.external_id)
    )
    return list((await session.execute(query)).scalars())

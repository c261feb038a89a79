"""Queries shared by several use cases; plain functions over an AsyncSession."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from hal.db.models import Company, Contact, ContactCompany, Project

SelectT = TypeVar("SelectT", bound=Select[Any])


def locked(query: SelectT) -> SelectT:
    """Lock the selected rows for this transaction (PostgreSQL; SQLite has one writer).

    FOR NO KEY UPDATE, not FOR UPDATE: inserting a link or an event takes a KEY SHARE lock on
    the parent row, which FOR UPDATE conflicts with; two identifies linking one company would
    then deadlock. Re-reads the row so a waiter sees the winner's write.
    """
    return query.with_for_update(key_share=True).execution_options(populate_existing=True)


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

"""Bulk seeding for benchmarks and load tests: many contacts, companies and events, fast
(PostgreSQL COPY; batched inserts on SQLite). Never used by the service itself."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

from sqlalchemy import func, select

from hal.db.engine import Database, Tx
from hal.db.models import Company, Contact
from hal.db.store.base import COMPANIES, CONTACTS, EVENTS, LINKS, bulk_insert
from hal.db.types import utcnow
from hal.services.projects import get_project

EVENT_NAMES = ["page-viewed", "feature-used", "report-exported", "seat-added", "invite-sent"]
BATCH = 20_000


def seeded_user_id(i: int) -> str:
    return f"seed-{i}"


def seeded_email(i: int) -> str:
    return f"seed-{i}@example.com"


def _chunks(start: int, stop: int) -> Iterator[range]:
    for low in range(start, stop, BATCH):
        yield range(low, min(stop, low + BATCH))


async def seed(tx: Tx, *, app_id: str, contacts: int, events_per_contact: int) -> dict[str, int]:
    """Add seeded contacts until the project has `contacts` of them (one company per ten
    contacts, each contact linked to its company, `events_per_contact` events each)."""
    project = await get_project(session=tx.orm, app_id=app_id)
    have = (
        await tx.execute(
            select(func.count())
            .select_from(Contact)
            .where(Contact.project_id == project.id, Contact.search_user_id.like("seed-%"))
        )
    ).scalar_one()
    now = utcnow()
    for chunk in _chunks(have, contacts):
        await bulk_insert(
            tx,
            CONTACTS,
            [
                {
                    "project_id": project.id,
                    "user_id": seeded_user_id(i),
                    "email": seeded_email(i),
                    "email_normalized": seeded_email(i),
                    "name": f"Seed Person {i}",
                    "search_name": f"seed person {i}",
                    "search_user_id": seeded_user_id(i),
                    "search_email": seeded_email(i),
                    "search_metadata": {"plan": "pro"},
                    "metadata": {"plan": "pro", "seats": i % 50},
                    "verified": False,
                    "created_at": now,
                    "last_seen_at": now,
                }
                for i in chunk
            ],
        )
        companies = range(chunk.start // 10, (chunk.stop + 9) // 10)
        await bulk_insert(
            tx,
            COMPANIES,
            [
                {
                    "project_id": project.id,
                    "external_id": f"seed-co-{c}",
                    "name": f"Seed Company {c}",
                    "search_external_id": f"seed-co-{c}",
                    "search_name": f"seed company {c}",
                    "metadata": {},
                    "search_metadata": {},
                    "created_at": now,
                }
                for c in companies
                if c * 10 >= have
            ],
        )
        contact_ids: dict[str, int] = {
            row.user_id: row.id
            for row in (
                await tx.execute(
                    select(Contact.user_id, Contact.id).where(
                        Contact.project_id == project.id,
                        Contact.user_id.in_([seeded_user_id(i) for i in chunk]),
                    )
                )
            ).all()
        }
        company_ids: dict[str, int] = {
            row.external_id: row.id
            for row in (
                await tx.execute(
                    select(Company.external_id, Company.id).where(
                        Company.project_id == project.id,
                        Company.external_id.in_([f"seed-co-{c}" for c in companies]),
                    )
                )
            ).all()
        }
        await bulk_insert(
            tx,
            LINKS,
            [
                {
                    "contact_id": contact_ids[seeded_user_id(i)],
                    "company_id": company_ids[f"seed-co-{i // 10}"],
                    "created_at": now,
                }
                for i in chunk
            ],
        )
        await bulk_insert(
            tx,
            EVENTS,
            [
                {
                    "project_id": project.id,
                    "contact_id": contact_ids[seeded_user_id(i)],
                    "scope": "contact",
                    "name": EVENT_NAMES[(i + n) % len(EVENT_NAMES)],
                    "properties": {"n": n},
                    "occurred_at": now - timedelta(minutes=n),
                    "received_at": now,
                }
                for i in chunk
                for n in range(events_per_contact)
            ],
        )
    return {"contacts": max(have, contacts), "added": max(0, contacts - have)}


async def refresh_statistics(database_url: str) -> None:
    """After a bulk load: fresh planner statistics, and (PostgreSQL) a vacuum, so that queries
    get index plans at once and autovacuum does not start on the new rows under load."""
    database = Database(database_url)
    try:
        async with database.engine.connect() as connection:
            if database.is_postgres:
                autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
                await autocommit.exec_driver_sql("VACUUM (ANALYZE)")
            else:
                await connection.exec_driver_sql("ANALYZE")
                await connection.commit()
    finally:
        await database.dispose()

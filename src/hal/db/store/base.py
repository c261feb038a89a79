"""Table handles, row types and the dialect-specific INSERT shared by the store modules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar, cast

from sqlalchemy import Executable, Table
from sqlalchemy.dialects.postgresql import Insert as PgInsert
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import Insert as SqliteInsert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from hal.db.engine import Tx
from hal.db.models import (
    Change,
    Company,
    Contact,
    ContactCompany,
    ContactMerge,
    Conversation,
    Deal,
    Event,
    Message,
    Project,
    StageChange,
    Visitor,
    WebhookMessage,
)
from hal.db.prepared import Prepared, prepared
from hal.domain.search import fold_text, folded

VISITORS = cast(Table, Visitor.__table__)
CONTACTS = cast(Table, Contact.__table__)
COMPANIES = cast(Table, Company.__table__)
LINKS = cast(Table, ContactCompany.__table__)
EVENTS = cast(Table, Event.__table__)
STAGE_CHANGES = cast(Table, StageChange.__table__)
DEALS = cast(Table, Deal.__table__)
CONVERSATIONS = cast(Table, Conversation.__table__)
MESSAGES = cast(Table, Message.__table__)
MERGES = cast(Table, ContactMerge.__table__)
CHANGES = cast(Table, Change.__table__)
WEBHOOK_MESSAGES = cast(Table, WebhookMessage.__table__)
PROJECTS = cast(Table, Project.__table__)


async def lock_people(
    tx: Tx, project_id: int, *, user_ids: Iterable[str] = (), emails: Iterable[str] = ()
) -> None:
    """Serialize every transaction naming one of these people (PostgreSQL advisory locks on
    the user_id and the normalized email, taken before any row): identify, merge, erase and
    an import chunk all lock a person this way. A row of an import chunk takes none: its
    chunk locked every key its rows name, and a key none named sends the row to the database
    (db/store/lookahead.py), where it takes its lock."""
    if tx.lookahead is not None:
        return
    await tx.lock(
        [(project_id, "user_id", user_id) for user_id in user_ids]
        + [(project_id, "email", email) for email in emails]
    )


def insert(tx: Tx, table: Table) -> PgInsert | SqliteInsert:
    """INSERT with the dialect's ON CONFLICT clause available."""
    return pg_insert(table) if tx.is_postgres else sqlite_insert(table)


S = TypeVar("S")


def per_dialect(
    build: Callable[[Callable[[Table], PgInsert | SqliteInsert]], Executable],
) -> Callable[[Tx], Prepared]:
    """A statement built once per dialect (building an upsert costs more than running it),
    prepared (db/prepared.py), its values passed as parameters."""
    built: dict[bool, Prepared] = {}

    def statement(tx: Tx) -> Prepared:
        if tx.is_postgres not in built:
            built[tx.is_postgres] = prepared(build(pg_insert if tx.is_postgres else sqlite_insert))
        return built[tx.is_postgres]

    return statement


@dataclass(frozen=True)
class VisitorRow:
    id: int
    visitor_key: str
    contact_id: int | None
    active_company_id: int | None
    properties: dict[str, Any]
    verified: bool  # the binding to contact_id was made by a proof of that contact
    signed_company_ids: list[str] | None
    created: bool  # created by this call


@dataclass(frozen=True)
class ContactRow:
    id: int
    user_id: str | None
    email: str | None
    email_normalized: str | None
    name: str | None
    metadata_: dict[str, Any]
    verified: bool
    email_verified: bool
    created_at: datetime
    last_seen_at: datetime
    version: int

    @classmethod
    def of(cls, row: Any) -> ContactRow:
        return cls(
            id=row.id,
            user_id=row.user_id,
            email=row.email,
            email_normalized=row.email_normalized,
            name=row.name,
            metadata_=row.metadata,
            verified=row.verified,
            email_verified=row.email_verified,
            created_at=row.created_at,
            last_seen_at=row.last_seen_at,
            version=row.version,
        )


@dataclass(frozen=True)
class CompanyRow:
    id: int
    external_id: str
    name: str | None
    stage: str | None
    stage_source: str | None
    metadata_: dict[str, Any]
    guarded: bool
    version: int
    created_at: datetime
    created: bool = False  # made by the write that returned it

    @classmethod
    def of(cls, row: Any, *, stamp: datetime | None = None) -> CompanyRow:
        return cls(
            id=row.id,
            external_id=row.external_id,
            name=row.name,
            stage=row.stage,
            stage_source=row.stage_source,
            metadata_=row.metadata,
            guarded=row.guarded,
            version=row.version,
            created_at=row.created_at,
            created=stamp is not None and row.created_at == stamp,
        )


CONTACT_COLUMNS = (
    CONTACTS.c.id,
    CONTACTS.c.user_id,
    CONTACTS.c.email,
    CONTACTS.c.email_normalized,
    CONTACTS.c.name,
    CONTACTS.c.metadata,
    CONTACTS.c.verified,
    CONTACTS.c.email_verified,
    CONTACTS.c.created_at,
    CONTACTS.c.last_seen_at,
    CONTACTS.c.version,
)
COMPANY_COLUMNS = (
    COMPANIES.c.id,
    COMPANIES.c.external_id,
    COMPANIES.c.name,
    COMPANIES.c.stage,
    COMPANIES.c.stage_source,
    COMPANIES.c.metadata,
    COMPANIES.c.guarded,
    COMPANIES.c.version,
    COMPANIES.c.created_at,
)


async def bulk_insert(tx: Tx, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows at once (PostgreSQL COPY; one executemany on SQLite): seeding only."""
    if not rows:
        return
    if not tx.is_postgres:
        await tx.execute(table.insert(), rows)
        return
    raw = await tx.connection.get_raw_connection()
    records = [
        tuple(json.dumps(v) if isinstance(v, dict) else v for v in row.values()) for row in rows
    ]
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        table.name, records=records, columns=list(rows[0])
    )


def with_search_copies(values: Mapping[str, Any], columns: Mapping[str, str]) -> dict[str, Any]:
    """The values with the case-folded copies that follow them (what searches compare with,
    hal.domain.search.fold): `columns` maps a written column to its copy; the metadata's
    strings go to `search_metadata`."""
    copies: dict[str, Any] = {
        copy: fold_text(values[column]) for column, copy in columns.items() if column in values
    }
    if "metadata" in values:
        copies["search_metadata"] = folded(values["metadata"])
    return {**values, **copies}

"""Companies, their links to contacts, guards, stage history and deals."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from operator import attrgetter
from typing import Any

from sqlalchemy import Table, bindparam, false, select, true, union_all, update
from sqlalchemy.dialects.postgresql import insert as pg_insert

from hal.db.engine import Tx
from hal.db.prepared import prepared
from hal.db.store.base import (
    COMPANIES,
    COMPANY_COLUMNS,
    DEALS,
    LINKS,
    STAGE_CHANGES,
    CompanyRow,
    insert,
    per_dialect,
    with_search_copies,
)
from hal.db.store.lookahead import Lookahead, ahead_of, needs_database
from hal.db.store.timeline import write_event


def _upserting(statement: Any) -> Any:
    """A companies insert as an upsert: a company that exists is kept as it is (the no-op
    update returns it and, on PostgreSQL, takes its row lock)."""
    return statement.on_conflict_do_update(
        index_elements=[COMPANIES.c.project_id, COMPANIES.c.external_id],
        set_={"name": COMPANIES.c.name},
    )


def _linking_once(statement: Any) -> Any:
    """A contact_companies insert that leaves an existing link alone."""
    return statement.on_conflict_do_nothing(index_elements=[LINKS.c.contact_id, LINKS.c.company_id])


@per_dialect
def _upsert_companies(insert: Callable[[Table], Any]) -> Any:
    return _upserting(insert(COMPANIES)).returning(*COMPANY_COLUMNS, sort_by_parameter_order=True)


async def upsert_companies(
    tx: Tx, *, project_id: int, names: Mapping[str, str | None]
) -> dict[str, CompanyRow]:
    """Create every company in `names` (external id -> the name a new one gets) and return
    them all, in one statement, in id order so two transactions lock them in the same order.
    The no-op conflict update returns existing rows as they are and takes each row's lock on
    PostgreSQL (NO KEY UPDATE: no key column changes). A row this call created says so
    (`created`): it carries this call's stamp as its creation time."""
    if not names:
        return {}
    if (ahead := ahead_of(tx)) is not None:
        return await _held_companies(tx, ahead, project_id=project_id, names=names)
    stamp = tx.stamp()
    rows = [_new_company(project_id, external_id, names[external_id], stamp)
            for external_id in sorted(names)]  # fmt: skip
    found = await tx.execute(_upsert_companies(tx), rows)
    return {row.external_id: CompanyRow.of(row, stamp=stamp) for row in found}


def _new_company(
    project_id: int, external_id: str, name: str | None, created_at: datetime
) -> dict[str, Any]:
    return search_keys(
        {
            "project_id": project_id,
            "external_id": external_id,
            "name": name,
            "metadata": {},
            "guarded": False,
            "created_at": created_at,
        }
    )


async def _held_companies(
    tx: Tx, ahead: Lookahead, *, project_id: int, names: Mapping[str, str | None]
) -> dict[str, CompanyRow]:
    """`upsert_companies` in an import chunk: a company it has not seen is made with an id
    given ahead and written with the chunk."""
    known = ahead.known_companies(names)
    if all(row is not None for row in known.values()):
        return {id_: row for id_, row in known.items() if row is not None}
    stamp = tx.stamp()
    upserted: dict[str, CompanyRow] = {}
    for external_id in sorted(names):
        company = known[external_id]
        if company is None:
            row = _new_company(project_id, external_id, names[external_id], stamp)
            company_id = await ahead.next_id(tx, COMPANIES)
            company = CompanyRow(
                id=company_id, external_id=external_id, name=row["name"], stage=None,
                stage_source=None, metadata_={}, guarded=False, version=1, created_at=stamp,
                created=True,
            )  # fmt: skip
            ahead.company_created(company, row)
        upserted[external_id] = company
    return upserted


_COMPANY_FOR_UPDATE = prepared(
    select(*COMPANY_COLUMNS)
    .where(COMPANIES.c.id == bindparam("company_row_id"))
    .with_for_update(key_share=True)
)


async def company_for_update(tx: Tx, company_id: int) -> CompanyRow:
    row = (await tx.execute(_COMPANY_FOR_UPDATE, {"company_row_id": company_id})).one()
    return CompanyRow.of(row)


_UPDATE_COMPANY = prepared(update(COMPANIES).where(COMPANIES.c.id == bindparam("company_row_id")))


def search_keys(values: Mapping[str, Any]) -> dict[str, Any]:
    """A company's values with their case-folded copies: id, name, stage, metadata."""
    return with_search_copies(values, _SEARCH_COLUMNS)


_SEARCH_COLUMNS = {
    "external_id": "search_external_id",
    "name": "search_name",
    "stage": "search_stage",
}


async def update_company(tx: Tx, company_id: int, values: Mapping[str, Any]) -> None:
    if not values:
        return
    if (ahead := ahead_of(tx)) is not None:
        ahead.company_written(company_id, search_keys(values))
        return
    await tx.write(_UPDATE_COMPANY, {"company_row_id": company_id, **search_keys(values)})


@per_dialect
def _insert_links(insert: Callable[[Table], Any]) -> Any:
    return _linking_once(insert(LINKS)).returning(LINKS.c.company_id)


async def link(tx: Tx, *, contact_id: int, company_ids: Iterable[int]) -> set[int]:
    """Link the contact to the companies; returns the ones that were not linked yet."""
    ids = sorted(set(company_ids))
    if not ids:
        return set()
    if (ahead := ahead_of(tx)) is not None:
        return ahead.link(contact_id, ids, tx.now)
    rows = [{"contact_id": contact_id, "company_id": id_, "created_at": tx.now} for id_ in ids]
    return {int(row.company_id) for row in await tx.execute(_insert_links(tx), rows)}


def _upsert_link_and_read() -> Any:
    """PostgreSQL: one company upserted as `upsert_companies` does and the contact linked to
    it as `link` does, in one statement (a data-modifying WITH): the company's row and
    whether the link is new (`named`), with the contact's other companies as the statement
    found them (its links from before the statement, read by their index)."""
    columns = _new_company(0, "", None, datetime.min)
    values = pg_insert(COMPANIES).values(
        {
            **{name: bindparam(name, type_=COMPANIES.c[name].type) for name in columns},
            "version": 1,  # the column's default, which an insert inside WITH is not given
        }
    )
    upserted = _upserting(values).returning(*COMPANY_COLUMNS).cte("upserted")
    contact_id = bindparam("contact_id", type_=LINKS.c.contact_id.type)
    made = select(contact_id, upserted.c.id, bindparam("linked_at", type_=LINKS.c.created_at.type))
    links = pg_insert(LINKS).from_select(["contact_id", "company_id", "created_at"], made)
    linked = _linking_once(links).returning(LINKS.c.company_id).cte("linked")
    named = select(
        *upserted.c, linked.c.company_id.is_not(None).label("newly_linked"), true().label("named")
    ).outerjoin(linked, linked.c.company_id == upserted.c.id)
    others = (
        select(*COMPANY_COLUMNS, false(), false())
        .join(LINKS, LINKS.c.company_id == COMPANIES.c.id)
        .where(LINKS.c.contact_id == contact_id, COMPANIES.c.id.not_in(select(upserted.c.id)))
    )
    return union_all(named, others)


_UPSERT_LINK_AND_READ = prepared(_upsert_link_and_read())


async def upsert_link_and_read(
    tx: Tx, *, project_id: int, names: Mapping[str, str | None], contact_id: int
) -> tuple[dict[str, CompanyRow], set[int], list[CompanyRow] | None]:
    """`upsert_companies`, then `link` of the contact to them all: the companies, the ones
    newly linked, and the contact's other companies by external id where the same statement
    reads them (as they were before it), else None (`linked_companies` reads them after).
    One company on PostgreSQL: one statement for all three (two round trips less)."""
    if len(names) != 1 or not tx.is_postgres or ahead_of(tx) is not None:
        rows = await upsert_companies(tx, project_id=project_id, names=names)
        ids = [r.id for r in rows.values()]
        return rows, await link(tx, contact_id=contact_id, company_ids=ids), None
    ((external_id, name),) = names.items()
    stamp = tx.stamp()
    params = {**_new_company(project_id, external_id, name, stamp), "contact_id": contact_id,
              "linked_at": tx.now}  # fmt: skip
    found = await tx.execute(_UPSERT_LINK_AND_READ, params)
    row = next(row for row in found if row.named)
    company = CompanyRow.of(row, stamp=stamp)
    others = sorted(
        (CompanyRow.of(other) for other in found if not other.named), key=attrgetter("external_id")
    )
    return {external_id: company}, {company.id} if row.newly_linked else set(), others


_LINKED = prepared(
    select(*COMPANY_COLUMNS)
    .join(LINKS, LINKS.c.company_id == COMPANIES.c.id)
    .where(LINKS.c.contact_id == bindparam("contact_id"))
    .order_by(COMPANIES.c.external_id)
)


async def linked_companies(tx: Tx, contact_id: int) -> list[CompanyRow]:
    """Every company linked to the contact, by external id."""
    needs_database(tx)
    return [CompanyRow.of(row) for row in await tx.execute(_LINKED, {"contact_id": contact_id})]


_GUARD = (
    update(COMPANIES)
    .where(COMPANIES.c.id.in_(bindparam("ids", expanding=True)), COMPANIES.c.guarded.is_(False))
    .values(guarded=true())
)
# The usual case, one company (identify's): a prepared statement (an IN list's SQL depends
# on its length, so it runs through SQLAlchemy's execution).
_GUARD_ONE = prepared(
    update(COMPANIES)
    .where(COMPANIES.c.id == bindparam("company_row_id"), COMPANIES.c.guarded.is_(False))
    .values(guarded=true())
)
_GUARD_LINKED = prepared(
    update(COMPANIES)
    .where(
        COMPANIES.c.id.in_(
            select(LINKS.c.company_id).where(LINKS.c.contact_id == bindparam("contact_id"))
        ),
        COMPANIES.c.guarded.is_(False),
    )
    .values(guarded=true())
)


async def guard(tx: Tx, company_ids: Iterable[int]) -> None:
    """Mark companies as having a verified contact."""
    ids = sorted(set(company_ids))
    if (ahead := ahead_of(tx)) is not None:
        ahead.guarded(ids)
    elif len(ids) == 1:
        await tx.write(_GUARD_ONE, {"company_row_id": ids[0]})
    elif ids:
        await tx.execute(_GUARD, {"ids": ids})


async def guard_linked(tx: Tx, contact_id: int) -> None:
    """Mark every company of a contact that has just become verified."""
    needs_database(tx)
    await tx.write(_GUARD_LINKED, {"contact_id": contact_id})


async def add_stage_change(
    tx: Tx,
    *,
    project_id: int,
    company_id: int,
    contact_id: int | None,
    stage: str,
    previous: str | None,
    source: str,
    mode: str,
) -> None:
    """Keep an applied stage write in the history and on the company's timeline."""
    change = {
        "company_id": company_id,
        "value": stage,
        "previous": previous,
        "source": source,
        "mode": mode,
        "created_at": tx.now,
    }
    event = {
        "project_id": project_id,
        "company_id": company_id,
        "contact_id": contact_id,
        "scope": "company",
        "name": "stage-changed",
        "properties": {"stage": stage, "previous": previous, "source": source},
    }
    if (ahead := ahead_of(tx)) is not None:
        ahead.stage_changed(change, {"occurred_at": tx.now, "received_at": tx.now, **event})
        return
    await tx.write(_insert_stage_change(tx), change)
    await write_event(tx, event)


@per_dialect
def _insert_stage_change(insert: Callable[[Table], Any]) -> Any:
    return insert(STAGE_CHANGES)


_DEAL_COLUMNS = (
    DEALS.c.id,
    DEALS.c.external_id,
    DEALS.c.name,
    DEALS.c.amount,
    DEALS.c.currency,
    DEALS.c.stage,
    DEALS.c.status,
    DEALS.c.close_date,
    DEALS.c.metadata,
    DEALS.c.updated_at,
)
_DEAL = select(*_DEAL_COLUMNS).where(
    DEALS.c.company_id == bindparam("company_row_id"),
    DEALS.c.external_id == bindparam("deal_id"),
)


async def deal_of(tx: Tx, *, company_id: int, deal_id: str) -> Any | None:
    """The deal row (its company is locked by the caller)."""
    params = {"company_row_id": company_id, "deal_id": deal_id}
    return (await tx.execute(_DEAL, params)).first()


async def save_deal(
    tx: Tx, *, company_id: int, deal_id: str, row_id: int | None, values: Mapping[str, Any]
) -> Any:
    """Insert or update a deal; returns the row as stored."""
    if row_id is None:
        created = insert(tx, DEALS).returning(*_DEAL_COLUMNS)
        params = {
            "company_id": company_id,
            "external_id": deal_id,
            "status": "open",
            "metadata": {},
            "created_at": tx.now,
            "updated_at": tx.now,
            **values,
        }
        return (await tx.execute(created, params)).one()
    statement = update(DEALS).where(DEALS.c.id == row_id).values(**values)
    return (await tx.execute(statement.returning(*_DEAL_COLUMNS))).one()

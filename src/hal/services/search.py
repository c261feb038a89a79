"""Search with filters (README "Search"): `POST /contacts/search` and `?filter=` on the list.
The query is read by the language's one reader (domain/search.py) against the project's
fields, compiled to SQL (db/search.py), sorted with ties broken by id and missing values last,
and paged by a cursor that never repeats or skips a record that did not change."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, or_, select

from hal.db.engine import Tx
from hal.db.models import Company, Contact, Conversation
from hal.db.search import Compiler
from hal.db.store.base import COMPANIES, CONTACTS, CONVERSATIONS, LINKS
from hal.domain.attributes import BUILTINS, AttrType, Model
from hal.domain.errors import InvalidInput
from hal.domain.projects import ProjectConfig
from hal.domain.search import FieldSpec, Kind, Sort, parse_query, parse_sort
from hal.services.team import summarize

MAX_TOTAL = 10_000
# A related company's built-ins a contact's or a conversation's query may name.
_COMPANY_BUILTINS = ("id", "name", "stage", "created_at")
_CONVERSATION_BUILTINS = {
    "status": AttrType.STRING,
    "created_at": AttrType.DATE,
    "updated_at": AttrType.DATE,  # the last activity
}
_DEAL_BUILTINS = {"status": AttrType.STRING, "amount": AttrType.NUMBER}


def catalog(project: ProjectConfig, kind: Kind) -> dict[str, FieldSpec]:
    """The fields a query on `kind` may name (README "Search")."""
    if kind is Kind.CONVERSATIONS:
        fields = {name: FieldSpec(t, "builtin", name) for name, t in _CONVERSATION_BUILTINS.items()}
        fields.update(_own(project, Model.CONTACT, prefix="contact.", relation="contact"))
        fields.update(_companies(project))
        return fields
    model = Model.CONTACT if kind is Kind.CONTACTS else Model.COMPANY
    fields = _own(project, model, prefix="", relation=None)
    if kind is Kind.CONTACTS:
        fields.update(_companies(project))
    else:
        fields.update({f"deal.{name}": FieldSpec(t, "builtin", name, relation="deal")
                       for name, t in _DEAL_BUILTINS.items()})  # fmt: skip
    return fields


def _own(
    project: ProjectConfig, model: Model, *, prefix: str, relation: str | None
) -> dict[str, FieldSpec]:
    """A model's built-ins and `metadata.KEY`, under `prefix`."""
    fields = {
        f"{prefix}{name}": FieldSpec(type_, "builtin", name, relation)
        for name, type_ in BUILTINS[model].items()
        if relation is None or name != "contact_count"
    }
    fields.update(_metadata(project, model, prefix=f"{prefix}metadata.", relation=relation))
    return fields


def _companies(project: ProjectConfig) -> dict[str, FieldSpec]:
    """`company.FIELD` and `company.metadata.KEY` of a related company."""
    fields = {
        f"company.{name}": FieldSpec(BUILTINS[Model.COMPANY][name], "builtin", name, "company")
        for name in _COMPANY_BUILTINS
    }
    fields.update(_metadata(project, Model.COMPANY, prefix="company.metadata.", relation="company"))
    return fields


def _metadata(
    project: ProjectConfig, model: Model, *, prefix: str, relation: str | None
) -> dict[str, FieldSpec]:
    # A key holding '"' cannot be named in SQLite's JSON path: it is not searchable.
    return {
        f"{prefix}{key}": FieldSpec(a.type, "metadata", key, relation, a.options)
        for key, a in project.attributes_of(model).items()
        if '"' not in key
    }


@dataclass(frozen=True)
class SearchPage:
    items: list[Any]
    next_cursor: str | None
    total: int
    total_exact: bool


def _encode(values: list[Any]) -> str:
    text = json.dumps([v.isoformat() if isinstance(v, datetime) else v for v in values])
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def _decode(cursor: str, spec: FieldSpec) -> tuple[bool, Any, int]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        missing, value, row_id = json.loads(base64.urlsafe_b64decode(padded).decode())
        if spec.type is AttrType.DATE and spec.source == "builtin" and value is not None:
            value = datetime.fromisoformat(value)
        if not isinstance(row_id, int) or not isinstance(missing, bool):
            raise ValueError
        if not missing and not _of_sort_type(value, spec):
            raise ValueError
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(
            "invalid_cursor", "cursor is not one this API gave", field="cursor"
        ) from None
    return missing, value, row_id


def _of_sort_type(value: Any, spec: FieldSpec) -> bool:
    """Whether a cursor's value is one the sort's column can be compared with."""
    if spec.type is AttrType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if spec.type is AttrType.DATE and spec.source == "builtin":
        return isinstance(value, datetime) and value.tzinfo is not None
    return isinstance(value, str)


def _after(
    table: Table, typed: Any, is_missing: Any, sort: Sort, cursor: tuple[bool, Any, int]
) -> Any:
    """The rows after the cursor's in the order (missing last, the value, then the id)."""
    missing, value, row_id = cursor
    later_id = table.c.id < row_id if sort.descending else table.c.id > row_id
    if missing:
        return and_(is_missing == 1, later_id)
    later = typed < value if sort.descending else typed > value
    return or_(is_missing == 1, and_(is_missing == 0, or_(later, and_(typed == value, later_id))))


@dataclass(frozen=True)
class _Searched:
    table: Table
    row: Any  # the ORM class of the rows
    default_sort: str  # a built-in, newest first


_SEARCHED = {
    Kind.CONTACTS: _Searched(CONTACTS, Contact, "created_at"),
    Kind.COMPANIES: _Searched(COMPANIES, Company, "created_at"),
    Kind.CONVERSATIONS: _Searched(CONVERSATIONS, Conversation, "updated_at"),
}


Filter = tuple[Any, str]  # a query's JSON body and its path in the request, for errors


def _where(tx: Tx, project: ProjectConfig, kind: Kind, filters: Sequence[Filter]) -> list[Any]:
    """The project's records of `kind` every filter finds, as a WHERE clause."""
    table = _SEARCHED[kind].table
    where = [table.c.project_id == project.id]
    if kind is Kind.CONTACTS:
        where.append(table.c.erased_at.is_(None))
    fields = catalog(project, kind)
    compiler = Compiler(tx.dialect, project.id)
    for query, path in filters:
        if query is not None:
            node = parse_query(query, fields, now=tx.now,
                               events=kind is not Kind.CONVERSATIONS, path=path)  # fmt: skip
            where.append(compiler.condition(node, table))
    return where


async def _total(tx: Tx, table: Table, where: list[Any]) -> tuple[int, bool]:
    counted = select(func.count()).select_from(
        select(table.c.id).where(*where).limit(MAX_TOTAL + 1).subquery()
    )
    total = int((await tx.execute(counted)).scalar_one())
    return min(total, MAX_TOTAL), total <= MAX_TOTAL


async def count(
    tx: Tx,
    *,
    project: ProjectConfig,
    kind: Kind,
    query: Any = None,
    path: str = "query",
    filters: Sequence[Filter] = (),
) -> tuple[int, bool]:
    """How many records the query (and every filter beside it) finds: exact up to 10,000,
    and whether it is exact."""
    where = _where(tx, project, kind, [*filters, (query, path)])
    return await _total(tx, _SEARCHED[kind].table, where)


def check(tx: Tx, *, project: ProjectConfig, kind: Kind, query: Any, sort: Any) -> None:
    """422 `invalid_query` unless the query and the sort are ones a search of `kind` takes."""
    _where(tx, project, kind, [(query, "query")])
    parse_sort(sort, catalog(project, kind), default=_default_sort(project, kind))


def _default_sort(project: ProjectConfig, kind: Kind) -> Sort:
    name = _SEARCHED[kind].default_sort
    return Sort(name, catalog(project, kind)[name], True)


async def search(
    tx: Tx,
    *,
    project: ProjectConfig,
    kind: Kind,
    filters: Sequence[Filter],
    sort: Any,
    limit: int,
    cursor: str | None,
    sort_path: str = "sort",
) -> SearchPage:
    """The project's records of `kind` that every filter finds, a page at a time, with their
    total. Items are Contact rows, CompanyListed or ConversationSummary."""
    searched = _SEARCHED[kind]
    table = searched.table
    where = _where(tx, project, kind, filters)
    fields = catalog(project, kind)
    order = parse_sort(sort, fields, default=_default_sort(project, kind), path=sort_path)
    typed = Compiler(tx.dialect, project.id).value(table, order.spec).typed
    is_missing = case((typed.is_(None), 1), else_=0)
    page = where if cursor is None else [
        *where, _after(table, typed, is_missing, order, _decode(cursor, order.spec))
    ]  # fmt: skip

    def direction(column: Any) -> Any:
        return column.desc() if order.descending else column.asc()

    rows = await tx.orm.execute(
        select(searched.row, is_missing.label("sort_missing"), typed.label("sort_value"))
        .where(*page)
        .order_by(is_missing.asc(), direction(typed), direction(table.c.id))
        .limit(limit + 1)
    )
    found = list(rows)
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = _encode([bool(last.sort_missing), last.sort_value, last[0].id])
    total, exact = await _total(tx, table, where)
    items = [row[0] for row in found[:limit]]
    return SearchPage(await _present(tx, kind, items), next_cursor, total, exact)


def read_json(text: str | None, field: str) -> Any:
    """A query or a sort given in a URL (`?filter=`, `?sort=`): URL-encoded JSON."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        raise InvalidInput("invalid_query", f"{field} is not JSON", field=field) from None


async def list_records(
    tx: Tx,
    *,
    app_id: str,
    kind: Kind,
    filters: Sequence[Filter],
    sort: Any,
    limit: int,
    cursor: str | None,
) -> SearchPage:
    """A search of the project's records (the search routes, and the lists with `?filter=`)."""
    project = await tx.project(app_id)
    return await search(tx, project=project, kind=kind, filters=filters, sort=sort,
                        limit=limit, cursor=cursor)  # fmt: skip


@dataclass(frozen=True)
class CompanyListed:
    company: Company
    contact_count: int


async def _present(tx: Tx, kind: Kind, items: list[Any]) -> list[Any]:
    """A page's rows as the lists show them."""
    if kind is Kind.CONVERSATIONS:
        return list(await summarize(tx.orm, items))
    if kind is Kind.COMPANIES:
        counted = await tx.execute(
            select(LINKS.c.company_id, func.count().label("n"))
            .join(CONTACTS, CONTACTS.c.id == LINKS.c.contact_id)
            .where(LINKS.c.company_id.in_([c.id for c in items]), CONTACTS.c.erased_at.is_(None))
            .group_by(LINKS.c.company_id)
        )
        counts = {row.company_id: row.n for row in counted}
        return [CompanyListed(c, counts.get(c.id, 0)) for c in items]
    return items

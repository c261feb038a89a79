"""Search with filters (README "Search"): `POST /contacts/search` and `?filter=` on the list.
The query is read by the language's one reader (domain/search.py) against the project's
fields, compiled to SQL (db/search.py), sorted with ties broken by id and missing values last,
and paged by a cursor that never repeats or skips a record that did not change."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Table, and_, case, func, or_, select

from hal.db.engine import Tx
from hal.db.models import Contact
from hal.db.search import Compiler
from hal.db.store.base import CONTACTS
from hal.domain.attributes import BUILTINS, AttrType, Model
from hal.domain.errors import InvalidInput
from hal.domain.projects import ProjectConfig
from hal.domain.search import Catalog, FieldSpec, Sort, parse_query, parse_sort

MAX_TOTAL = 10_000
_RELATED_BUILTINS = ("id", "name", "stage", "created_at")


def catalog(project: ProjectConfig, model: Model) -> dict[str, FieldSpec]:
    """The fields a query may name: built-ins, `metadata.KEY`, and for contacts the linked
    companies' `company.FIELD` and `company.metadata.KEY`."""
    fields = {
        name: FieldSpec(type_, "builtin", name)
        for name, type_ in BUILTINS[model].items()
        if name != "contact_count"
    }
    fields.update(_metadata(project, model, prefix="metadata.", relation=None))
    if model is Model.CONTACT:
        for name in _RELATED_BUILTINS:
            fields[f"company.{name}"] = FieldSpec(
                BUILTINS[Model.COMPANY][name], "builtin", name, relation="company"
            )
        fields.update(_metadata(project, Model.COMPANY, prefix="company.metadata.",
                                relation="company"))  # fmt: skip
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


async def search_contacts(
    tx: Tx,
    *,
    project: ProjectConfig,
    query: Any,
    sort: Any,
    limit: int,
    cursor: str | None,
) -> SearchPage:
    """The project's contacts the query finds, a page at a time, with their total."""
    fields: Catalog = catalog(project, Model.CONTACT)
    compiler = Compiler(tx.dialect)
    where = [CONTACTS.c.project_id == project.id, CONTACTS.c.erased_at.is_(None)]
    if query is not None:
        node = parse_query(query, fields, now=tx.now, events=True)
        where.append(compiler.condition(node, CONTACTS))
    default = Sort("created_at", fields["created_at"], True)
    order = parse_sort(sort, fields, default=default)
    typed = compiler.value(CONTACTS, order.spec).typed
    is_missing = case((typed.is_(None), 1), else_=0)
    page = where if cursor is None else [
        *where, _after(CONTACTS, typed, is_missing, order, _decode(cursor, order.spec))
    ]  # fmt: skip

    def direction(column: Any) -> Any:
        return column.desc() if order.descending else column.asc()

    rows = await tx.orm.execute(
        select(Contact, is_missing.label("sort_missing"), typed.label("sort_value"))
        .where(*page)
        .order_by(is_missing.asc(), direction(typed), direction(CONTACTS.c.id))
        .limit(limit + 1)
    )
    found = list(rows)
    next_cursor = None
    if len(found) > limit:
        last = found[limit - 1]
        next_cursor = _encode([bool(last.sort_missing), last.sort_value, last.Contact.id])
    counted = select(func.count()).select_from(
        select(CONTACTS.c.id).where(*where).limit(MAX_TOTAL + 1).subquery()
    )
    total = int((await tx.execute(counted)).scalar_one())
    items = [row.Contact for row in found[:limit]]
    return SearchPage(items, next_cursor, min(total, MAX_TOTAL), total <= MAX_TOTAL)

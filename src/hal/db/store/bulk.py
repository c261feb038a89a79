"""Many rows of one table in one set-based write, for an import chunk's held writes
(db/store/lookahead.py): on PostgreSQL the rows are COPYed into a staging table and written
from it with one INSERT ... SELECT or UPDATE ... FROM (db/copy.py); on SQLite they are one
executemany. Every row names the same columns (a missing value takes the column's default),
so each table costs one statement per kind of write.

A unique key taken meanwhile fails the INSERT ... SELECT as an IntegrityError, which
`Database.run` answers by running the chunk again: it then reads the row as existing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Table, bindparam, text, update

from hal.db.copy import copy_insert, stage
from hal.db.engine import Tx
from hal.db.store.base import insert


def _default_of(column: Column[Any]) -> Callable[[], Any]:
    """What SQLAlchemy would insert for a column a row does not name."""
    default = column.default
    if default is None:
        return lambda: None
    if getattr(default, "is_callable", False):
        return lambda: default.arg(None)  # type: ignore[attr-defined]
    return lambda: default.arg  # type: ignore[attr-defined]


def _columns(table: Table, rows: Iterable[Mapping[str, Any]]) -> list[str]:
    names: set[str] = set()
    for row in rows:
        names.update(row)
    return sorted(names)


def _complete(
    table: Table, columns: list[str], rows: Sequence[Mapping[str, Any]]
) -> list[dict[str, Any]]:
    defaults = {name: _default_of(table.c[name]) for name in columns}
    return [{name: row[name] if name in row else defaults[name]() for name in columns}
            for row in rows]  # fmt: skip


async def insert_rows(
    tx: Tx, table: Table, rows: Sequence[Mapping[str, Any]], *, skip_taken: Iterable[str] = ()
) -> None:
    """Insert the rows; `skip_taken` names a unique key whose taken values are skipped
    (ON CONFLICT DO NOTHING), otherwise a taken key fails the statement."""
    if not rows:
        return
    columns = _columns(table, rows)
    complete = _complete(table, columns, rows)
    conflict = list(skip_taken)
    if not tx.is_postgres:
        statement = insert(tx, table)
        if conflict:
            statement = statement.on_conflict_do_nothing(index_elements=conflict)
        await tx.execute(statement, complete)
        return
    await copy_insert(tx.connection, table, columns, complete, skip_taken=conflict)


async def update_rows(tx: Tx, table: Table, rows: Mapping[int, Mapping[str, Any]]) -> None:
    """Write each row's values to the row of that id; one statement for the rows that set
    the same columns."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
    for row_id, values in rows.items():
        if values:
            groups[tuple(sorted(values))].append({**values, "id": row_id})
    for columns, group in groups.items():
        if not tx.is_postgres:
            statement = update(table).where(table.c.id == bindparam("row_id"))
            await tx.execute(statement, [{"row_id": row.pop("id"), **row} for row in group])
            continue
        staging = await stage(tx.connection, table, ["id", *columns], group)
        assigned = ", ".join(f'"{name}" = s."{name}"' for name in columns)
        target = f'"{table.name}"'
        sql = f"UPDATE {target} SET {assigned} FROM {staging} AS s WHERE {target}.id = s.id"  # noqa: S608
        await tx.execute(text(sql))


async def reserve_ids(tx: Tx, table: Table, count: int) -> list[int]:
    """PostgreSQL: `count` ids of the table's sequence, for rows inserted later in this
    transaction (an id never returns to the sequence, as after a rollback)."""
    sequence = f"pg_get_serial_sequence('{table.name}', 'id')"
    sql = f"SELECT nextval({sequence}) FROM generate_series(1, :count)"  # noqa: S608
    found = await tx.execute(text(sql), {"count": count})
    return [int(value) for value in found.scalars()]


async def last_id(tx: Tx, table: Table) -> int:
    """SQLite: the largest id the table ever gave (AUTOINCREMENT never gives one again). The
    transaction holds SQLite's one write lock, so the ids after it are this transaction's."""
    given = "coalesce((SELECT seq FROM sqlite_sequence WHERE name = :name), 0)"
    largest = f'coalesce((SELECT max(id) FROM "{table.name}"), 0)'  # noqa: S608
    found = await tx.execute(text(f"SELECT max({given}, {largest})"), {"name": table.name})
    return int(found.scalar_one())

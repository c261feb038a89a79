"""Many rows of one table in one set-based write, for an import chunk's held writes
(db/store/lookahead.py): on PostgreSQL the rows are COPYed into a staging table and written
from it with one INSERT ... SELECT or UPDATE ... FROM (db/many_rows.py); on SQLite they are
one executemany. Every row names the same columns (a missing value takes the column's
default), so each table costs one statement per kind of write.

A unique key taken meanwhile fails the INSERT ... SELECT as an IntegrityError, which
`Database.run` answers by running the chunk again: it then reads the row as existing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Table, bindparam, text, update

from hal.db import many_rows
from hal.db.engine import Tx


async def insert_rows(
    tx: Tx, table: Table, rows: Sequence[Mapping[str, Any]], *, skip_taken: Sequence[str] = ()
) -> None:
    """Insert the rows; `skip_taken` names a unique key whose taken values are skipped
    (ON CONFLICT DO NOTHING), otherwise a taken key fails the statement."""
    await many_rows.insert_rows(tx.connection, table, rows, skip_taken=skip_taken)


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
        named = ["id", *columns]
        staging = await many_rows.stage(
            tx.connection, table, named, many_rows.records(table, named, group)
        )
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

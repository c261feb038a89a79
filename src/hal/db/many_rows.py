"""Many rows into one table in one statement, each engine's fastest way: PostgreSQL COPYs
them into a staging table that lives until the commit and writes them from it with one
INSERT ... SELECT (or UPDATE ... FROM) in their order; SQLite takes them in one executemany
on its own connection. Used by an import chunk's held writes (db/store/bulk.py) and its change
log rows (db/changelog.py), where SQLAlchemy's per-row statement work cost more than the
database's.

Values are converted as SQLAlchemy converts them (each column type's bind processor; a JSON
document as text for COPY). Every row names the same columns: a missing value takes the
column's default. An error (a unique key taken meanwhile) surfaces as SQLAlchemy's, so
`Database.run` runs the transaction again. The SQL is built from the models' own table and
column names, never from input.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Column, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection

Record = tuple[Any, ...]


def _default_of(column: Column[Any]) -> Callable[[], Any]:
    """What SQLAlchemy would insert for a column a row does not name."""
    default = column.default
    if default is None:
        return lambda: None
    if getattr(default, "is_callable", False):
        return lambda: default.arg(None)  # type: ignore[attr-defined]
    return lambda: default.arg  # type: ignore[attr-defined]


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    names: set[str] = set()
    for row in rows:
        names.update(row)
    return sorted(names)


def records(
    table: Table, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]
) -> list[Record]:
    """The rows as tuples in `columns` order, a missing value the column's default."""
    defaults = [_default_of(table.c[name]) for name in columns]
    named = list(zip(columns, defaults, strict=True))
    return [tuple(row[n] if n in row else d() for n, d in named) for row in rows]


def _converted(connection: AsyncConnection, table: Table, columns: Sequence[str],
               rows: list[Record]) -> list[Record]:  # fmt: skip
    """The values as the driver takes them: SQLAlchemy's bind processors on SQLite; on
    PostgreSQL a JSON document as text (what asyncpg's COPY takes), the rest as they are."""
    dialect = connection.dialect
    if dialect.name == "postgresql":
        processors = [
            (lambda v: json.dumps(v) if v is not None else None)
            if isinstance(table.c[name].type, JSON) else None
            for name in columns
        ]  # fmt: skip
    else:
        processors = [table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
                      for name in columns]  # fmt: skip
    if not any(processors):
        return rows
    pairs = list(enumerate(processors))
    return [tuple(p(row[i]) if p else row[i] for i, p in pairs) for row in rows]


async def stage(
    connection: AsyncConnection, table: Table, columns: Sequence[str], rows: list[Record]
) -> str:
    """PostgreSQL: COPY the rows into a new staging table, numbered in their order
    (`hal_order`); its name."""
    info = connection.sync_connection.info if connection.sync_connection else {}
    number = info.get("hal_staging", 0) + 1
    info["hal_staging"] = number
    staging = f"hal_staging_{number}"
    listed = ", ".join(f'"{name}"' for name in columns)
    shape = f'SELECT {listed}, 0::bigint AS hal_order FROM "{table.name}" WITH NO DATA'  # noqa: S608
    await connection.execute(text(f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS {shape}"))
    converted = _converted(connection, table, columns, rows)
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        staging,
        records=[(*row, order) for order, row in enumerate(converted)],
        columns=[*columns, "hal_order"],
    )
    return staging


async def insert_rows(
    connection: AsyncConnection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_taken: Sequence[str] = (),
) -> None:
    """Insert the rows in their order; `skip_taken` names a unique key whose taken values
    are skipped (ON CONFLICT DO NOTHING), otherwise a taken key fails the statement."""
    if not rows:
        return
    columns = columns_of(rows)
    listed = ", ".join(f'"{name}"' for name in columns)
    conflict = f" ON CONFLICT ({', '.join(skip_taken)}) DO NOTHING" if skip_taken else ""
    values = records(table, columns, rows)
    if connection.dialect.name == "postgresql":
        staging = await stage(connection, table, columns, values)
        in_order = f"SELECT {listed} FROM {staging} ORDER BY hal_order"  # noqa: S608
        await connection.execute(
            text(f'INSERT INTO "{table.name}" ({listed}) {in_order}{conflict}')
        )
        return
    marks = ", ".join("?" for _ in columns)
    sql = f'INSERT INTO "{table.name}" ({listed}) VALUES ({marks}){conflict}'  # noqa: S608
    converted = _converted(connection, table, columns, values)
    await connection.exec_driver_sql(sql, converted)

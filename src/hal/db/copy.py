"""PostgreSQL's fastest way in for many rows: COPY them into a staging table that lives until
the commit, then write them with one INSERT ... SELECT (or UPDATE ... FROM) in their order.
Used by an import chunk's held writes (db/store/bulk.py) and its change log rows
(db/changelog.py). Errors of that statement (a unique key taken meanwhile) surface as
SQLAlchemy's, so `Database.run` runs the transaction again.

The SQL is built from the models' own table and column names, never from input.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import JSON, Table, text
from sqlalchemy.ext.asyncio import AsyncConnection


def _encoder(table: Table, name: str) -> Any:
    """How a value of the column goes into COPY (asyncpg takes a JSON document as text)."""
    if isinstance(table.c[name].type, JSON):
        return lambda value: json.dumps(value) if value is not None else None
    return None


async def stage(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
) -> str:
    """COPY the rows (each naming every column) into a new staging table, numbered in their
    order (`hal_order`); its name."""
    info = connection.sync_connection.info if connection.sync_connection else {}
    number = info.get("hal_staging", 0) + 1
    info["hal_staging"] = number
    staging = f"hal_staging_{number}"
    listed = ", ".join(f'"{name}"' for name in columns)
    shape = f'SELECT {listed}, 0::bigint AS hal_order FROM "{table.name}" WITH NO DATA'  # noqa: S608
    await connection.execute(text(f"CREATE TEMP TABLE {staging} ON COMMIT DROP AS {shape}"))
    encoders = [_encoder(table, name) for name in columns]
    if any(encoders):
        records = [
            (*(e(row[n]) if e else row[n] for n, e in zip(columns, encoders, strict=True)), i)
            for i, row in enumerate(rows)
        ]
    else:
        records = [(*(row[n] for n in columns), i) for i, row in enumerate(rows)]
    raw = await connection.get_raw_connection()
    await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
        staging, records=records, columns=[*columns, "hal_order"]
    )
    return staging


async def copy_insert(
    connection: AsyncConnection,
    table: Table,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    *,
    skip_taken: Sequence[str] = (),
) -> None:
    """Insert the rows through a staging table; `skip_taken` names a unique key whose taken
    values are skipped (ON CONFLICT DO NOTHING)."""
    staging = await stage(connection, table, columns, rows)
    listed = ", ".join(f'"{name}"' for name in columns)
    conflict = f" ON CONFLICT ({', '.join(skip_taken)}) DO NOTHING" if skip_taken else ""
    in_order = f"SELECT {listed} FROM {staging} ORDER BY hal_order"  # noqa: S608
    await connection.execute(text(f'INSERT INTO "{table.name}" ({listed}) {in_order}{conflict}'))

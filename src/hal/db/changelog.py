"""The change log's write side (README "Change log and live stream").

A use case records changes as it goes (`Tx.record`, each of a `ChangeType`); the transaction
inserts them as its last statement, just before it commits. A rolled-back transaction writes
none.

Readers (streams, webhook fan-out) follow a project's changes by `id`, so a change must never
get an id lower than one a reader has already passed. How ids are given differs per engine:

- SQLite runs one writer at a time: each change's insert takes the id after its project's
  counter (`projects.last_change_id`), which a trigger on the insert advances (migration
  0020); an import chunk's many advance it once and carry their ids.
- PostgreSQL runs writers side by side. Advancing the counter in the writer would hold its row
  lock until the commit and serialize the project's writes, so the writer inserts its changes
  without an id, stamped with its transaction id (`txid`). `number_changes` then gives ids, in
  order, to the changes of every transaction older than the oldest one still running
  (`pg_snapshot_xmin`): those have all ended, so no change can later appear below the ids
  given. One numbering runs at a time (an advisory lock); readers call it before they read.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, bindparam, insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from hal.db.many_rows import insert_rows
from hal.db.models import Change, Project
from hal.db.prepared import prepared
from hal.domain.changes import ChangeType

CHANGES = cast(Table, Change.__table__)
PROJECTS = cast(Table, Project.__table__)
MANY = 200  # changes a transaction writes the engine's fastest way (db/many_rows.py)


@dataclass(frozen=True)
class PendingChange:
    project_id: int
    type: ChangeType
    data: dict[str, Any]
    # An anonymous visitor's change (its data names no contact): erased with that visitor.
    visitor_row_id: int | None = None


_ADVANCE = prepared(
    update(PROJECTS)
    .where(PROJECTS.c.id == bindparam("project_row_id"))
    .values(last_change_id=PROJECTS.c.last_change_id + bindparam("count"))
    .returning(PROJECTS.c.last_change_id)
)
_INSERT = prepared(insert(CHANGES))
# SQLite: each change numbered by its own insert, the id after its project's counter, which
# the insert's trigger advances (migration 0020): a transaction's changes in one statement.
_INSERT_NUMBERED = prepared(
    insert(CHANGES).values(
        id=select(PROJECTS.c.last_change_id + 1)
        .where(PROJECTS.c.id == bindparam("numbered_in"))
        .scalar_subquery()
    )
)


def _row(change: PendingChange, now: datetime) -> dict[str, Any]:
    return {
        "project_id": change.project_id,
        "type": change.type,
        "data": change.data,
        "contact_id": change.type.person(change.data),
        "visitor_row_id": change.visitor_row_id,
        "created_at": now,
    }


class Writer(Protocol):
    """What writing the change log needs of a transaction (db/engine.Tx)."""

    connection: AsyncConnection

    @property
    def now(self) -> datetime: ...

    @property
    def is_postgres(self) -> bool: ...

    async def execute(self, statement: Any, params: Any = None) -> Any: ...

    async def write(self, statement: Any, params: Any) -> None: ...


async def write_changes(tx: Writer, pending: list[PendingChange]) -> None:
    """Insert the transaction's changes (numbered on SQLite); call it last, before the commit."""
    if not pending:
        return
    now = tx.now
    if tx.is_postgres:
        written = [_row(change, now) for change in pending]
        if len(written) >= MANY:  # an import chunk's
            await insert_rows(tx.connection, CHANGES, written)
        else:  # held for the COMMIT (Tx.write)
            await tx.write(_INSERT, written)
        return
    if len(pending) < MANY:
        numbered = [{**_row(change, now), "numbered_in": change.project_id} for change in pending]
        await tx.execute(_INSERT_NUMBERED, numbered)
        return
    # An import chunk's: each project's counter advanced once, the ids given here (the
    # trigger then finds its counter already past them).
    by_project: dict[int, list[PendingChange]] = defaultdict(list)
    for change in pending:
        by_project[change.project_id].append(change)
    rows: list[dict[str, Any]] = []
    for project_id in sorted(by_project):
        changes = by_project[project_id]
        params = {"project_row_id": project_id, "count": len(changes)}
        last = int((await tx.execute(_ADVANCE, params)).scalar_one())
        first = last - len(changes) + 1
        rows.extend(
            {**_row(change, now), "id": first + offset} for offset, change in enumerate(changes)
        )
    await insert_rows(tx.connection, CHANGES, rows)


# Changes of ended transactions, oldest transaction first; each project's counter advances by
# its count and they take the ids after it. Bounded per call; callers repeat while it is full.
_NUMBER = text(
    """
    WITH ready AS (
        SELECT seq, project_id, row_number() OVER (PARTITION BY project_id ORDER BY txid, seq) AS n
        FROM (
            SELECT seq, project_id, txid FROM changes
            WHERE id IS NULL AND txid < pg_snapshot_xmin(pg_current_snapshot())
            ORDER BY txid, seq
            LIMIT :batch
        ) AS ended
    ), counts AS (
        SELECT project_id, count(*) AS n FROM ready GROUP BY project_id
    ), advanced AS (
        UPDATE projects SET last_change_id = projects.last_change_id + counts.n
        FROM counts WHERE projects.id = counts.project_id
        RETURNING projects.id AS project_id, projects.last_change_id - counts.n AS base
    )
    UPDATE changes SET id = advanced.base + ready.n
    FROM ready JOIN advanced ON advanced.project_id = ready.project_id
    WHERE changes.seq = ready.seq
    """
)
_ONE_NUMBERING = text("SELECT pg_advisory_xact_lock(1213, 1)")  # the two-key lock space
NUMBER_BATCH = 5000


async def number_changes(connection: AsyncConnection, batch: int = NUMBER_BATCH) -> int:
    """PostgreSQL: give ids to the changes of ended transactions; how many were numbered."""
    if connection.dialect.name != "postgresql":
        return 0
    await connection.execute(_ONE_NUMBERING)
    numbered = await connection.execute(_NUMBER, {"batch": batch})
    return int(numbered.rowcount)

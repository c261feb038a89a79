"""The change log's write side (SPEC "One change log, two consumers").

A use case records changes as it goes (`Tx.record`, or `record` on an ORM session); the
transaction writes them as its last statements, just before it commits: the project's
counter is advanced (the row lock orders concurrent writers, so ids grow in commit order
within a project) and the rows are inserted. A rolled-back transaction writes none.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from hal.db.models import Change, Project
from hal.db.types import utcnow

CHANGES = cast(Table, Change.__table__)
PROJECTS = cast(Table, Project.__table__)


@dataclass(frozen=True)
class PendingChange:
    project_id: int
    type: str
    data: dict[str, Any]
    # An anonymous visitor's change (its data names no contact): erased with that visitor.
    visitor_id: int | None = None


_CONTACT_CHANGES = {"contact.created", "contact.updated"}


def contact_of(type: str, data: dict[str, Any]) -> int | None:
    """The contact whose data a change carries (None for ids-only changes such as
    contact.merged and contact.deleted), kept beside it so an erasure finds every copy."""
    if type in _CONTACT_CHANGES:
        value = data.get("id")
    elif type.startswith("contact.") and type != "contact.company_linked":
        return None
    else:
        value = data.get("contact_id")
    return value if isinstance(value, int) else None


_ADVANCE = (
    update(PROJECTS)
    .where(PROJECTS.c.id == bindparam("project_row_id"))
    .values(last_change_id=PROJECTS.c.last_change_id + bindparam("count"))
    .returning(PROJECTS.c.last_change_id)
)


async def write_changes(
    connection: AsyncConnection, pending: list[PendingChange], now: datetime | None = None
) -> None:
    """Number and insert the transaction's changes; call it last, before the commit."""
    if not pending:
        return
    created_at = now or utcnow()
    by_project: dict[int, list[PendingChange]] = defaultdict(list)
    for change in pending:
        by_project[change.project_id].append(change)
    rows: list[dict[str, Any]] = []
    for project_id in sorted(by_project):
        changes = by_project[project_id]
        params = {"project_row_id": project_id, "count": len(changes)}
        last = int((await connection.execute(_ADVANCE, params)).scalar_one())
        first = last - len(changes) + 1
        rows.extend(
            {
                "project_id": project_id,
                "id": first + offset,
                "type": change.type,
                "data": change.data,
                "contact_id": contact_of(change.type, change.data),
                "visitor_id": change.visitor_id,
                "created_at": created_at,
            }
            for offset, change in enumerate(changes)
        )
    await connection.execute(insert(CHANGES), rows)


def record(
    session: AsyncSession,
    project_id: int,
    type: str,
    data: dict[str, Any],
    *,
    visitor_id: int | None = None,
) -> None:
    """Record a change made through the ORM session; written when its transaction commits."""
    change = PendingChange(project_id, type, data, visitor_id)
    session.info.setdefault("changes", []).append(change)

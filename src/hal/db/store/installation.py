"""The installation counts and the refusals log (README "Installation check and refusals"):
each process's tally added in one transaction, and what the admin's pages read."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Integer, Table, delete, func, select

from hal.db.engine import Tx
from hal.db.models import InstallationCount, InstallationUser, Project, Refusal
from hal.db.store.base import insert

COUNTS = cast(Table, InstallationCount.__table__)
USERS = cast(Table, InstallationUser.__table__)
REFUSALS = cast(Table, Refusal.__table__)


async def project_ids(tx: Tx, app_ids: Iterable[str]) -> dict[str, int]:
    found = await tx.execute(select(Project.id, Project.app_id).where(Project.app_id.in_(app_ids)))
    return {row.app_id: row.id for row in found}


async def add_counts(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Add counts (`project_id`, `day`, `origin`, `metric`, `count`, `first_seen_at`,
    `last_seen_at`) to what other processes added."""
    if not rows:
        return
    statement = insert(tx, COUNTS)
    new = statement.excluded
    await tx.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "day", "origin", "metric"],
            set_={
                "count": COUNTS.c.count + new.count,
                "first_seen_at": func.min(COUNTS.c.first_seen_at, new.first_seen_at)
                if not tx.is_postgres
                else func.least(COUNTS.c.first_seen_at, new.first_seen_at),
                "last_seen_at": func.max(COUNTS.c.last_seen_at, new.last_seen_at)
                if not tx.is_postgres
                else func.greatest(COUNTS.c.last_seen_at, new.last_seen_at),
            },
        ),
        list(rows),
    )


async def add_users(tx: Tx, rows: Sequence[dict[str, Any]]) -> None:
    """Users seen (`project_id`, `day`, `user_key`, `proven`): once proven, proven that day."""
    if not rows:
        return
    statement = insert(tx, USERS)
    await tx.execute(
        statement.on_conflict_do_update(
            index_elements=["project_id", "day", "user_key"],
            set_={"proven": USERS.c.proven | statement.excluded.proven},
        ),
        list(rows),
    )


async def add_refusals(tx: Tx, rows: Sequence[dict[str, Any]], *, keep: int) -> None:
    """Log refusals, then keep each project's newest `keep`."""
    if not rows:
        return
    await tx.execute(REFUSALS.insert(), list(rows))
    for project_id in {row["project_id"] for row in rows}:
        oldest_kept = (
            select(REFUSALS.c.id)
            .where(REFUSALS.c.project_id == project_id)
            .order_by(REFUSALS.c.id.desc())
            .offset(keep - 1)
            .limit(1)
            .scalar_subquery()
        )
        await tx.execute(
            delete(REFUSALS).where(REFUSALS.c.project_id == project_id, REFUSALS.c.id < oldest_kept)
        )


async def drop_days_before(tx: Tx, day: str) -> None:
    await tx.execute(delete(COUNTS).where(COUNTS.c.day < day))
    await tx.execute(delete(USERS).where(USERS.c.day < day))


async def counts_since(tx: Tx, project_id: int, day: str) -> list[Any]:
    """The project's counts from `day` on, added up over the days, by origin and metric."""
    found = await tx.execute(
        select(
            COUNTS.c.origin,
            COUNTS.c.metric,
            func.sum(COUNTS.c.count).label("count"),
            func.min(COUNTS.c.first_seen_at).label("first_seen_at"),
            func.max(COUNTS.c.last_seen_at).label("last_seen_at"),
        )
        .where(COUNTS.c.project_id == project_id, COUNTS.c.day >= day)
        .group_by(COUNTS.c.origin, COUNTS.c.metric)
    )
    return list(found)


async def users_since(tx: Tx, project_id: int, day: str) -> tuple[int, int]:
    """Distinct users seen from `day` on, and those of them never proven in that time."""
    per_user = (
        select(USERS.c.user_key, func.max(USERS.c.proven.cast(Integer)).label("proven"))
        .where(USERS.c.project_id == project_id, USERS.c.day >= day)
        .group_by(USERS.c.user_key)
        .subquery()
    )
    counted = select(
        func.count().label("seen"), func.count().filter(per_user.c.proven == 0).label("never")
    ).select_from(per_user)
    row = (await tx.execute(counted)).one()
    return int(row.seen), int(row.never)


async def refusals_page(tx: Tx, project_id: int, *, before: int | None, limit: int) -> list[Any]:
    query = select(REFUSALS).where(REFUSALS.c.project_id == project_id)
    if before is not None:
        query = query.where(REFUSALS.c.id < before)
    return list(await tx.execute(query.order_by(REFUSALS.c.id.desc()).limit(limit)))


def refusal_row(
    *, project_id: int, at: datetime, route: str, status: int, code: str, field: str | None,
    message: str, origin: str | None, visitor_id: str | None,
) -> dict[str, Any]:  # fmt: skip
    return {"project_id": project_id, "created_at": at, "route": route, "status": status,
            "code": code, "field": field, "message": message, "origin": origin,
            "visitor_id": visitor_id}  # fmt: skip

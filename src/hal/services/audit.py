"""The audit log (README "Privacy and data hygiene"): every agent or admin write and every
inbox login, with who made it, what, when and the fields it changed. `record_audit` is the one
way in, called by the service functions in the write's own transaction; secrets are named,
never shown."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, cast

from sqlalchemy import Table, insert, select

from hal.db.models import AuditEntry
from hal.db.types import utcnow
from hal.domain.privacy import audit_filter
from hal.services.paging import Page, check_limit, decode_cursor, page_of

AUDIT = cast(Table, AuditEntry.__table__)
SECRET = "[secret]"  # noqa: S105 (what an entry shows instead of a secret)


@dataclass(frozen=True)
class Actor:
    """Who made a write: an inbox agent, an API token, or the command line on the server."""

    kind: str  # agent | token | cli
    id: int | None = None  # None for a login tried with an email no agent has


CLI = Actor("cli")


class _Executes(Protocol):
    async def execute(self, statement: Any, /) -> Any: ...


async def record_audit(
    db: _Executes,
    *,
    project_id: int,
    actor: Actor,
    action: str,
    target: str | None = None,
    changes: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Write one audit entry with the caller's transaction (a Core `Tx` or an ORM session)."""
    await db.execute(
        insert(AUDIT).values(
            project_id=project_id,
            actor_type=actor.kind,
            actor_id=actor.id,
            action=action,
            target=target,
            changes=changes or {},
            created_at=now or utcnow(),
        )
    )


async def audit_page(
    db: _Executes,
    *,
    project_id: int,
    cursor: str | None = None,
    limit: int = 50,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> Page:
    """One page of entries, newest first, those the filter keeps (README "Privacy and data
    hygiene"; each filter as `hal.domain.privacy.audit_filter` reads it)."""
    wanted = audit_filter(actor=actor, action=action, since=since, until=until)
    before = decode_cursor(cursor)
    check_limit(limit)
    query = select(AUDIT).where(AUDIT.c.project_id == project_id)
    if before is not None:
        query = query.where(AUDIT.c.id < before)
    if wanted.actor_kind is not None:
        query = query.where(AUDIT.c.actor_type == wanted.actor_kind)
    if wanted.actor_id is not None:
        query = query.where(AUDIT.c.actor_id == wanted.actor_id)
    if wanted.action is not None:
        query = query.where(AUDIT.c.action == wanted.action)
    if wanted.since is not None:
        query = query.where(AUDIT.c.created_at >= wanted.since)
    if wanted.until is not None:
        query = query.where(AUDIT.c.created_at < wanted.until)
    rows = await db.execute(query.order_by(AUDIT.c.id.desc()).limit(limit + 1))
    return page_of(list(rows), limit)

"""Retention (README "Privacy and data hygiene"): tracked events older than a project's
`event_retention_days`, closed conversations quiet for longer than its
`conversation_retention_days`, and webhook messages older than `HAL_WEBHOOK_LOG_RETENTION`
(with their attempts) are deleted in bounded batches, each its own transaction. The server
runs `purge` beside the change log's purge; `hal purge` runs it on demand. It also finishes
erasures a stopped process left half done."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, select

from hal.db.engine import Database, Tx
from hal.db.models import Project
from hal.db.store.base import CONVERSATIONS, EVENTS, MESSAGES, WEBHOOK_MESSAGES
from hal.db.store.privacy import delete_batch
from hal.db.types import utcnow
from hal.services.erasure import finish_unfinished_erasures

BATCH = 1000


@dataclass(frozen=True)
class PurgeCounts:
    events: int
    conversations: int
    messages: int
    webhook_messages: int
    erasures_finished: int

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


async def _projects(database: Database) -> list[Any]:
    query = select(
        Project.id, Project.event_retention_days, Project.conversation_retention_days
    ).where(
        (Project.event_retention_days.is_not(None))
        | (Project.conversation_retention_days.is_not(None))
    )

    async def read(tx: Tx) -> list[Any]:
        return list(await tx.execute(query))

    return await database.run(read)


async def _old_events(tx: Tx, *, project_id: int, days: int, batch: int) -> int:
    cutoff = utcnow() - timedelta(days=days)
    where = and_(EVENTS.c.project_id == project_id, EVENTS.c.received_at < cutoff)
    return await delete_batch(tx, table=EVENTS, key=EVENTS.c.id, where=where, batch=batch)


async def _old_deliveries(tx: Tx, *, keep: timedelta, batch: int) -> int:
    """Webhook messages older than `keep`; their attempts go with them (ON DELETE CASCADE)."""
    where = WEBHOOK_MESSAGES.c.created_at < utcnow() - keep
    return await delete_batch(
        tx, table=WEBHOOK_MESSAGES, key=WEBHOOK_MESSAGES.c.id, where=where, batch=batch
    )


async def _old_conversations(tx: Tx, *, project_id: int, days: int, batch: int) -> tuple[int, int]:
    """One batch: a closed, quiet conversation's messages (at most `batch`), and the
    conversations left with none."""
    cutoff = utcnow() - timedelta(days=days)
    old = select(CONVERSATIONS.c.id).where(
        CONVERSATIONS.c.project_id == project_id,
        CONVERSATIONS.c.status == "closed",
        CONVERSATIONS.c.last_message_at < cutoff,
    )
    messages = await delete_batch(
        tx, table=MESSAGES, key=MESSAGES.c.id, where=MESSAGES.c.conversation_id.in_(old),
        batch=batch,
    )  # fmt: skip
    if messages:
        return 0, messages
    where = CONVERSATIONS.c.id.in_(old)
    return await delete_batch(
        tx, table=CONVERSATIONS, key=CONVERSATIONS.c.id, where=where, batch=batch
    ), 0


async def purge(
    database: Database, *, webhook_log: timedelta | None = None, batch: int = BATCH
) -> PurgeCounts:
    """Apply every project's retention settings and the delivery log's (`webhook_log`, kept
    whole when None), then finish half-done erasures."""
    events = conversations = messages = deliveries = 0
    for project in await _projects(database):
        if project.event_retention_days is not None:
            while True:
                removed = await database.run(
                    partial(
                        _old_events,
                        project_id=project.id,
                        days=project.event_retention_days,
                        batch=batch,
                    )
                )
                events += removed
                await asyncio.sleep(0)
                if removed < batch:
                    break
        if project.conversation_retention_days is not None:
            while True:
                gone, removed = await database.run(
                    partial(
                        _old_conversations,
                        project_id=project.id,
                        days=project.conversation_retention_days,
                        batch=batch,
                    )
                )
                conversations += gone
                messages += removed
                await asyncio.sleep(0)
                if gone < batch and removed == 0:
                    break
    while webhook_log is not None:
        removed = await database.run(partial(_old_deliveries, keep=webhook_log, batch=batch))
        deliveries += removed
        await asyncio.sleep(0)
        if removed < batch:
            break
    finished = await finish_unfinished_erasures(database)
    return PurgeCounts(events, conversations, messages, deliveries, finished)

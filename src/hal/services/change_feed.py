"""The live side of the change log (README "Change log and live stream"): every open stream of this
process is fed by one reader per project, which polls the log every `poll_seconds` and at once after
a commit in this process. Several processes share nothing but the database: a change committed
anywhere is read by every process's reader within a poll. Each round first numbers the changes
committed since the last (PostgreSQL, see db/changelog.py), so numbering goes on even with no stream
open.

Streams hold no database connection while idle: the reader's queries are short transactions,
and each stream only waits on its own bounded queue. A stream whose client reads too slowly
overflows its queue and is closed; the client reconnects with Last-Event-ID and replays. A replay
reads the log a page at a time, each page its own short transaction, and a visitor's replay reads
only the changes that name its contact or its anonymous visitor (both columns are indexed).

Open streams are counted per process, per client address and per visitor (`StreamSlots`), in this
process's memory: with several processes each one holds its own counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import Any

from sqlalchemy import bindparam, delete, func, select, union_all

from hal import metrics
from hal.db.engine import Database, Tx
from hal.db.models import Change, Project
from hal.db.types import utcnow
from hal.domain.crm import instant_text
from hal.domain.errors import RateLimited
from hal.services import retention

log = logging.getLogger("hal.stream")

PAGE = 500
WAKE_COALESCE_SECONDS = 0.02


@dataclass(frozen=True)
class ChangeView:
    id: int
    type: str
    timestamp: str
    data: dict[str, Any]


def view(row: Any) -> ChangeView:
    return ChangeView(row.id, row.type, instant_text(row.created_at), row.data)


_AFTER = (
    select(Change.id, Change.type, Change.created_at, Change.data)
    .where(Change.project_id == bindparam("project_id"), Change.id > bindparam("after"))
    .order_by(Change.id)
    .limit(PAGE)
)
_UP_TO = _AFTER.where(Change.id <= bindparam("up_to"))
# A visitor's replay: the changes naming its contact or its anonymous visitor, found through
# their indexes. The ids are picked in a subquery without the id range or the order, so neither
# planner walks the project's whole (project_id, id) index instead (SQLite, without statistics,
# does for the plain `contact_id = ? OR visitor_row_id = ?`). A contact_id of NULL matches
# nothing (NULL = NULL is not true): an anonymous visitor's are found by its visitor_row_id.
_OF_VISITOR = union_all(
    select(Change.seq).where(
        Change.project_id == bindparam("project_id"),
        Change.contact_id == bindparam("contact_id"),
    ),
    select(Change.seq).where(
        Change.project_id == bindparam("project_id"),
        Change.visitor_row_id == bindparam("visitor_row_id"),
    ),
)
_CONCERNING = (
    select(Change.id, Change.type, Change.created_at, Change.data)
    .where(
        Change.seq.in_(_OF_VISITOR),
        Change.id > bindparam("after"),
        Change.id <= bindparam("up_to"),
        Change.type.in_(bindparam("types", expanding=True)),
    )
    .order_by(Change.id)
    .limit(PAGE)
)
_LAST = select(Project.last_change_id).where(Project.id == bindparam("project_id"))
_OLDEST = select(func.min(Change.id)).where(Change.project_id == bindparam("project_id"))


@dataclass(frozen=True)
class Concerning:
    """Whose changes a replay reads: those of `types` naming this contact, or written for this
    visitor while it was anonymous (the change log's `contact_id` and `visitor_row_id`)."""

    contact_id: int | None
    visitor_row_id: int
    types: frozenset[str]


async def changes_after(
    tx: Tx,
    *,
    project_id: int,
    after: int,
    up_to: int | None = None,
    concerning: Concerning | None = None,
) -> list[Any]:
    """One page of the project's changes after `after` (and up to `up_to`; only those
    `concerning` names, when given), in id order."""
    params: dict[str, Any] = {"project_id": project_id, "after": after}
    if up_to is None:
        return list(await tx.execute(_AFTER, params))
    params["up_to"] = up_to
    if concerning is None:
        return list(await tx.execute(_UP_TO, params))
    params |= {
        "contact_id": concerning.contact_id,
        "visitor_row_id": concerning.visitor_row_id,
        "types": sorted(concerning.types),
    }
    return list(await tx.execute(_CONCERNING, params))


async def replay(
    database: Database,
    *,
    project_id: int,
    after: int,
    up_to: int,
    concerning: Concerning | None = None,
) -> AsyncGenerator[ChangeView, None]:
    """The changes after `after` up to `up_to`, in id order (only those `concerning` names,
    when given), read a page at a time: no transaction stays open while they are sent."""
    while after < up_to:
        rows = await database.run(
            partial(
                changes_after,
                project_id=project_id,
                after=after,
                up_to=up_to,
                concerning=concerning,
            )
        )
        for row in rows:
            yield view(row)
        if len(rows) < PAGE:
            return
        after = rows[-1].id


async def last_change_id(tx: Tx, *, project_id: int) -> int:
    return int((await tx.execute(_LAST, {"project_id": project_id})).scalar_one())


async def replay_start(tx: Tx, *, project_id: int, after: int) -> bool:
    """Whether changes after `after` were already purged (the client must resync)."""
    oldest = (await tx.execute(_OLDEST, {"project_id": project_id})).scalar_one_or_none()
    last = (await tx.execute(_LAST, {"project_id": project_id})).scalar_one()
    if oldest is None:
        return bool(last > after)
    return bool(oldest > after + 1)


RETRY_AFTER_SECONDS = 10


@dataclass(frozen=True)
class StreamCaps:
    """How many streams one process holds open: in all, per client address, per visitor."""

    per_process: int
    per_client: int
    per_visitor: int


class StreamsFull(Exception):
    """This process holds as many open streams as it may."""


class StreamSlots:
    """The open streams of this process, counted per client address and per visitor."""

    def __init__(self) -> None:
        self.total = 0
        self._clients: Counter[str] = Counter()
        self._visitors: Counter[tuple[int, str]] = Counter()

    def take(self, *, caps: StreamCaps, client: str, visitor: tuple[int, str] | None) -> StreamSlot:
        """A slot for one more stream, or a refusal: `StreamsFull` for the process, 429 for the
        client address or the visitor (`visitor` is the project's id and the visitor_id)."""
        if self.total >= caps.per_process:
            raise StreamsFull
        if self._clients[client] >= caps.per_client:
            raise RateLimited(
                "too_many_streams",
                f"this address has {caps.per_client} streams open; close one first",
                retry_after=RETRY_AFTER_SECONDS,
            )
        if visitor is not None and self._visitors[visitor] >= caps.per_visitor:
            raise RateLimited(
                "too_many_streams",
                f"this visitor has {caps.per_visitor} streams open; close one first",
                retry_after=RETRY_AFTER_SECONDS,
                field="visitor_id",
            )
        self.total += 1
        self._clients[client] += 1
        if visitor is not None:
            self._visitors[visitor] += 1
        return StreamSlot(self, client, visitor)

    def _release(self, client: str, visitor: tuple[int, str] | None) -> None:
        self.total -= 1
        _uncount(self._clients, client)
        if visitor is not None:
            _uncount(self._visitors, visitor)


def _uncount(counts: Counter[Any], key: Any) -> None:
    counts[key] -= 1
    if counts[key] <= 0:
        del counts[key]  # an address or visitor with no stream open holds no memory


class StreamSlot:
    """One open stream's place in `StreamSlots`; `release` gives it back (once)."""

    def __init__(self, slots: StreamSlots, client: str, visitor: tuple[int, str] | None) -> None:
        self._slots: StreamSlots | None = slots
        self.client, self.visitor = client, visitor

    def release(self) -> None:
        if self._slots is not None:
            self._slots._release(self.client, self.visitor)
            self._slots = None


@dataclass(eq=False)
class Subscription:
    project_id: int
    cursor: int  # the last change id committed, or read by the feed, when this stream subscribed
    queue: asyncio.Queue[ChangeView | None] = field(default_factory=lambda: asyncio.Queue(1000))


class ChangeFeed:
    """One process's readers of the change log, for its open streams."""

    def __init__(
        self,
        database: Database,
        *,
        poll_seconds: float = 0.25,
        retention: timedelta,
        webhook_log_retention: timedelta | None = None,
    ) -> None:
        self.database, self.poll_seconds, self.retention = database, poll_seconds, retention
        self.webhook_log_retention = webhook_log_retention
        self._subscribers: dict[int, set[Subscription]] = {}
        self.slots = StreamSlots()
        self._cursors: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        database.commit_listeners.append(self._wake.set)

    @property
    def open_streams(self) -> int:
        return sum(len(subs) for subs in self._subscribers.values())

    @contextlib.asynccontextmanager
    async def subscribe(self, project_id: int) -> AsyncIterator[Subscription]:
        """A subscription that starts after every change committed before it (numbered first,
        so a change committed just before cannot come later as live), or after what this
        process's reader already passed, whichever is later."""
        await self.database.number_changes()
        last = await self.database.run(partial(last_change_id, project_id=project_id))
        cursor = self._cursors.setdefault(project_id, last)
        subscription = Subscription(project_id, max(last, cursor))
        self._subscribers.setdefault(project_id, set()).add(subscription)
        self.start()
        metrics.stream_opened()
        try:
            yield subscription
        finally:
            metrics.stream_closed()
            subscribers = self._subscribers.get(project_id, set())
            subscribers.discard(subscription)
            if not subscribers:
                self._subscribers.pop(project_id, None)
                self._cursors.pop(project_id, None)

    def start(self) -> None:
        """Run the readers (and the retention purge); a first stream also starts them."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hal-change-feed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        last_purge = 0.0
        loop = asyncio.get_running_loop()
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.poll_seconds)
            if self._wake.is_set():  # one round serves the commits of the next moment
                await asyncio.sleep(WAKE_COALESCE_SECONDS)
            self._wake.clear()
            try:
                await self.database.number_changes()
                for project_id in list(self._subscribers):
                    await self._read(project_id)
                if loop.time() - last_purge > 60:
                    last_purge = loop.time()
                    await purge_changes(self.database, self.retention)
                    # Projects' event and conversation retention, the delivery log's, and
                    # unfinished erasures.
                    await retention.purge(self.database, webhook_log=self.webhook_log_retention)
            except Exception:  # a database hiccup must not end every stream of the process
                log.warning("change feed read failed; retrying", exc_info=True)
                await asyncio.sleep(self.poll_seconds)

    async def _read(self, project_id: int) -> None:
        start = self._cursors.get(project_id)
        if start is None:
            return
        cursor: int = start
        while True:
            rows = await self.database.run(
                partial(changes_after, project_id=project_id, after=cursor)
            )
            for row in rows:
                change = view(row)
                for subscription in list(self._subscribers.get(project_id, ())):
                    try:
                        subscription.queue.put_nowait(change)
                    except asyncio.QueueFull:  # a slow client: close it, it will replay
                        self._subscribers[project_id].discard(subscription)
                        with contextlib.suppress(asyncio.QueueEmpty):
                            subscription.queue.get_nowait()
                        subscription.queue.put_nowait(None)
                cursor = change.id
            if project_id in self._cursors:
                self._cursors[project_id] = cursor
            if len(rows) < PAGE:
                return


async def purge_changes(database: Database, retention: timedelta, batch: int = 1000) -> int:
    """Delete changes older than the retention period, in bounded batches; returns how many."""
    cutoff = utcnow() - retention
    # Numbered changes only: one still waiting for its id has not been read by anyone yet.
    old = (
        select(Change.seq)
        .where(Change.created_at < cutoff, Change.id.is_not(None))
        .order_by(Change.created_at)
        .limit(batch)
    )

    async def one_batch(tx: Tx) -> int:
        keys = list((await tx.execute(old)).scalars())
        if keys:
            await tx.execute(delete(Change).where(Change.seq.in_(keys)))
        return len(keys)

    deleted = 0
    while True:
        removed = await database.run(one_batch)
        deleted += removed
        if removed < batch:
            return deleted

"""Webhook delivery: new changes become messages per endpoint (fan-out), and due messages are
sent, signed per Standard Webhooks, and their outcome recorded.

Any number of processes (`hal serve`, `hal worker`) share the work through the database. An
endpoint's fan-out and a message's claim are row locks taken with SKIP LOCKED; a claim also
pushes the message's next attempt a lease ahead, so it is sent by one process at a time, and
sent again after the lease if that process died mid-way (at least once). Nothing here runs in a
request: the change's own transaction only wrote the change. A project's webhooks wait while it
imports (`ImportWatch`): its import's changes are fanned out and sent, in order, once it ends.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import cast

from sqlalchemy import Table, func, insert, select, update

from hal import metrics
from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.models import Change, Project, WebhookAttempt, WebhookEndpoint, WebhookMessage
from hal.domain.rates import parse_retry_schedule
from hal.services.import_jobs import importing_projects
from hal.webhooks.rules import (
    message_payload,
    retry_delay,
    should_disable,
    subscribes,
)
from hal.webhooks.send import Claimed, Clients, Outcome, send

log = logging.getLogger("hal.webhooks")

ENDPOINTS = cast(Table, WebhookEndpoint.__table__)
WEBHOOK_MESSAGES = cast(Table, WebhookMessage.__table__)
ATTEMPTS = cast(Table, WebhookAttempt.__table__)
_NONE: frozenset[int] = frozenset()
FAN_OUT_BATCH = 500
FAN_OUT_ROUNDS = 20  # endpoints fanned out per step before sending resumes
DRAIN_SECONDS = 5.0
MAX_BACKOFF_SECONDS = 30.0
WAKE_COALESCE_SECONDS = 0.05


async def fan_out(
    db: Database, *, first_delay: float, batch: int = FAN_OUT_BATCH, held: frozenset[int] = _NONE
) -> int:
    """Turn one lagging endpoint's new changes into messages (not an endpoint of a project in
    `held`, one importing now); the number of changes read."""

    async def work(tx: Tx) -> int:
        endpoint = (
            await tx.execute(
                select(
                    WebhookEndpoint.id,
                    WebhookEndpoint.project_id,
                    WebhookEndpoint.events,
                    WebhookEndpoint.change_cursor,
                    Project.last_change_id,
                )
                .join(Project, Project.id == WebhookEndpoint.project_id)
                .where(
                    WebhookEndpoint.enabled,
                    WebhookEndpoint.change_cursor < Project.last_change_id,
                    WebhookEndpoint.project_id.not_in(sorted(held)),
                )
                .order_by(WebhookEndpoint.id)
                .limit(1)
                .with_for_update(skip_locked=True, key_share=True, of=WebhookEndpoint)
            )
        ).first()
        if endpoint is None:
            return 0
        changes = (
            await tx.execute(
                select(
                    Change.id,
                    Change.type,
                    Change.data,
                    Change.contact_id,
                    Change.visitor_row_id,
                    Change.created_at,
                )
                .where(
                    Change.project_id == endpoint.project_id,
                    Change.id > endpoint.change_cursor,
                    Change.id <= endpoint.last_change_id,
                )
                .order_by(Change.id)
                .limit(batch)
            )
        ).all()
        due = tx.now + timedelta(seconds=first_delay)
        rows = [
            {
                "endpoint_id": endpoint.id,
                "change_id": change.id,
                "contact_id": change.contact_id,
                "visitor_row_id": change.visitor_row_id,
                "type": change.type,
                "payload": message_payload(change.type, change.created_at, change.data),
                "status": "pending",
                "attempts": 0,
                "next_attempt_at": due,
                "created_at": tx.now,
            }
            for change in changes
            if subscribes(endpoint.events, change.type)
        ]
        if rows:
            await tx.execute(insert(WEBHOOK_MESSAGES), rows)
        # Past every change read; past the whole range when its changes were purged.
        cursor = changes[-1].id if len(changes) == batch else endpoint.last_change_id
        await tx.execute(
            update(ENDPOINTS).where(ENDPOINTS.c.id == endpoint.id).values(change_cursor=cursor)
        )
        return max(len(changes), 1)

    return await db.run(work)


async def claim(
    db: Database, *, limit: int, lease: timedelta, held: frozenset[int] = _NONE
) -> list[Claimed]:
    """Take up to `limit` due messages of enabled endpoints (not of a project in `held`),
    leased to this process."""

    async def work(tx: Tx) -> list[Claimed]:
        rows = (
            await tx.execute(
                select(
                    WebhookMessage.id,
                    WebhookMessage.endpoint_id,
                    WebhookMessage.payload,
                    WebhookMessage.attempts,
                    WebhookEndpoint.url,
                    WebhookEndpoint.secret,
                    WebhookEndpoint.previous_secret,
                    WebhookEndpoint.previous_secret_expires_at,
                )
                .join(WebhookEndpoint, WebhookEndpoint.id == WebhookMessage.endpoint_id)
                .where(
                    WebhookMessage.status == "pending",
                    WebhookMessage.next_attempt_at <= tx.now,
                    WebhookEndpoint.enabled,
                    WebhookEndpoint.project_id.not_in(sorted(held)),
                )
                .order_by(WebhookMessage.next_attempt_at)
                .limit(limit)
                .with_for_update(skip_locked=True, of=WebhookMessage)
            )
        ).all()
        if not rows:
            return []
        until = tx.now + lease
        await tx.execute(
            update(WEBHOOK_MESSAGES)
            .where(WEBHOOK_MESSAGES.c.id.in_([row.id for row in rows]))
            .values(next_attempt_at=until)
        )
        return [
            Claimed(
                message_id=row.id,
                endpoint_id=row.endpoint_id,
                payload=row.payload,
                attempts=row.attempts,
                lease=until,
                url=row.url,
                secret=row.secret,
                previous_secret=row.previous_secret,
                previous_secret_expires_at=row.previous_secret_expires_at,
            )
            for row in rows
        ]

    return await db.run(work)


async def record_attempt(
    db: Database, message: Claimed, outcome: Outcome, *, schedule: tuple[float, ...]
) -> str:
    """Store the attempt, then the message's fate: delivered, retried later, or failed; and
    the endpoint's: a success clears its failing streak, 410 or 5 days of failure disable it.
    Returns the message's new status (delivered, pending or failed)."""

    async def work(tx: Tx) -> str:
        endpoint = ENDPOINTS.c
        if outcome.delivered:
            await tx.execute(
                update(ENDPOINTS)
                .where(endpoint.id == message.endpoint_id, endpoint.failing_since.is_not(None))
                .values(failing_since=None)
            )
            status, next_attempt_at = "delivered", None
        else:
            failing_since = (
                await tx.execute(
                    update(ENDPOINTS)
                    .where(endpoint.id == message.endpoint_id)
                    .values(failing_since=func.coalesce(endpoint.failing_since, tx.now))
                    .returning(endpoint.failing_since)
                )
            ).scalar_one_or_none()
            gone = outcome.status_code == 410
            reason = None
            if gone:
                reason = "the receiver answered 410 Gone"
            elif failing_since is not None and should_disable(failing_since, tx.now):
                reason = f"failing since {failing_since.isoformat()} without a success"
            if reason is not None:
                await tx.execute(
                    update(ENDPOINTS)
                    .where(endpoint.id == message.endpoint_id, endpoint.enabled)
                    .values(enabled=False, disabled_reason=reason)
                )
            delay = None
            if not gone:
                delay = retry_delay(schedule, message.attempts + 1, retry_after=outcome.retry_after)
            status = "failed" if delay is None else "pending"
            next_attempt_at = None if delay is None else tx.now + timedelta(seconds=delay)
        await tx.execute(
            insert(ATTEMPTS),
            {
                "message_id": message.message_id,
                "attempted_at": outcome.attempted_at,
                "status_code": outcome.status_code,
                "error": outcome.error,
                "duration_ms": outcome.duration_ms,
            },
        )
        # Only while this process's lease holds: a retry or replay meanwhile wins.
        await tx.execute(
            update(WEBHOOK_MESSAGES)
            .where(
                WEBHOOK_MESSAGES.c.id == message.message_id,
                WEBHOOK_MESSAGES.c.next_attempt_at == message.lease,
            )
            .values(
                status=status,
                attempts=WEBHOOK_MESSAGES.c.attempts + 1,
                next_attempt_at=next_attempt_at,
            )
        )
        return status

    return await db.run(work)


@dataclass(frozen=True)
class DeliveryOptions:
    """The settings delivery runs by (HAL_WEBHOOK_*)."""

    concurrency: int
    poll_seconds: float
    timeout_seconds: float
    retry_schedule: tuple[float, ...]
    allow_private: bool

    @classmethod
    def of(cls, settings: Settings) -> DeliveryOptions:
        return cls(
            concurrency=settings.webhook_concurrency,
            poll_seconds=settings.webhook_poll_seconds,
            timeout_seconds=settings.webhook_timeout_seconds,
            retry_schedule=parse_retry_schedule(settings.webhook_retry_schedule),
            allow_private=settings.webhooks_allow_private,
        )


class ImportWatch:
    """The projects importing now: the one of this process's import job (`here`, at once)
    and those of any process (asked of the database at most once a second). Their webhooks
    wait until the import ends (docs/decisions.md, "Imports and webhooks")."""

    def __init__(
        self, db: Database, *, every: float = 1.0, here: Callable[[], int | None] | None = None
    ) -> None:
        self.db, self.every, self.here = db, every, here
        self._checked, self._importing = -every, frozenset[int]()

    async def projects(self) -> frozenset[int]:
        now = asyncio.get_running_loop().time()
        if now - self._checked >= self.every:
            self._checked = now
            self._importing = await importing_projects(self.db)
        local = self.here() if self.here is not None else None
        return self._importing | {local} if local is not None else self._importing


class DeliveryWorker:
    """The loop: fan out new changes, claim due messages up to `concurrency` in flight, send
    each in its own task and record it; poll when there is nothing to do."""

    def __init__(
        self,
        db: Database,
        options: DeliveryOptions,
        *,
        importing: Callable[[], int | None] | None = None,
    ) -> None:
        self.db, self.options = db, options
        self.imports = ImportWatch(db, here=importing)
        self.schedule = options.retry_schedule
        # Longer than one attempt can take, so a live process never loses its claim.
        self.lease = timedelta(seconds=options.timeout_seconds * 2 + 5)
        self.in_flight: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()
        self.wake = asyncio.Event()  # a commit in this process wrote changes
        self._task: asyncio.Task[None] | None = None

    def start(self) -> DeliveryWorker:
        self._task = asyncio.create_task(self.run(), name="webhook-delivery")
        return self

    def stop_soon(self) -> None:
        self.stopping.set()
        self.wake.set()

    async def stop(self) -> None:
        """Stop claiming; let attempts in flight finish for a moment, then cancel them (their
        messages are sent again once the lease ends)."""
        self.stop_soon()
        if self._task is not None:
            await self._task

    async def run(self) -> None:
        clients = Clients(self.options.timeout_seconds)
        backoff = self.options.poll_seconds
        self.db.commit_listeners.append(self.wake.set)
        try:
            while not self.stopping.is_set():
                self.wake.clear()  # a commit from here on wakes the pause below
                try:
                    busy = await self.step(clients)
                    backoff = self.options.poll_seconds
                except Exception:
                    log.exception("webhook delivery: a step failed; trying again")
                    busy, backoff = False, min(backoff * 2, MAX_BACKOFF_SECONDS)
                if not busy:
                    await self._pause(backoff)
            await self._drain()
        finally:
            self.db.commit_listeners.remove(self.wake.set)
            await clients.close()

    async def step(self, clients: Clients) -> bool:
        """One round of work; False when there was nothing to do."""
        first_delay = self.schedule[0]
        held = await self.imports.projects()
        await self.db.number_changes()
        fanned = 0
        for _ in range(FAN_OUT_ROUNDS):
            read = await fan_out(self.db, first_delay=first_delay, held=held)
            if not read:
                break
            fanned += read
        free = self.options.concurrency - len(self.in_flight)
        if free <= 0:
            await asyncio.wait(
                self.in_flight,
                timeout=self.options.poll_seconds,
                return_when=asyncio.FIRST_COMPLETED,
            )
            return True
        claimed = await claim(self.db, limit=free, lease=self.lease, held=held)
        for message in claimed:
            task = asyncio.create_task(self._deliver(clients, message))
            self.in_flight.add(task)
            task.add_done_callback(self.in_flight.discard)
        return bool(fanned or claimed)

    async def _deliver(self, clients: Clients, message: Claimed) -> None:
        outcome = await send(
            clients,
            message,
            allow_private=self.options.allow_private,
            limit_seconds=self.options.timeout_seconds,
        )
        result = "unrecorded"
        try:
            status = await record_attempt(self.db, message, outcome, schedule=self.schedule)
            result = "retrying" if status == "pending" else status
        except Exception:
            log.exception("webhook delivery: msg_%s sent but not recorded", message.message_id)
        metrics.webhook_attempt(result, outcome.duration_ms / 1000)

    async def _pause(self, seconds: float) -> None:
        """Until the next poll, or sooner when this process commits changes or stops."""
        try:
            await asyncio.wait_for(self.wake.wait(), timeout=seconds)
        except TimeoutError:
            return
        if not self.stopping.is_set():
            # Under a stream of writes, one round serves the commits of the next moment
            # instead of one round per commit.
            await asyncio.sleep(WAKE_COALESCE_SECONDS)

    async def _drain(self) -> None:
        if not self.in_flight:
            return
        _, pending = await asyncio.wait(self.in_flight, timeout=DRAIN_SECONDS)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

"""The installation check and the refusals log (README "Installation check and refusals").

Every widget call is tallied in its process (no statement in the call's transaction): its
origin, identify's outcome (verified, unsigned, failed by code), the identified user (by a
hash), and a refused call's code, field and redacted message. `Installation.flush` adds the
tally to the database in one transaction of its own at least every 10 seconds, so several
processes add up; a crash loses at most the tally not yet added. The admin's pages read it
back: counts by origin over the last days, the enforcement impact, the latest refusals."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hal.db.engine import Database, Tx
from hal.db.store import installation as store
from hal.domain.errors import HalError, InvalidInput
from hal.domain.installation import (
    CALLS,
    FAILED,
    KEEP_REFUSALS,
    MAX_DAYS,
    UNSIGNED,
    VERIFIED,
    day_of,
    identify_metric,
    redact,
    user_key,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Claim:
    """What an identify call claimed: the identified user (its key), for the enforcement
    impact."""

    user_key: str | None

    @classmethod
    def of(cls, user_id: object, email: object) -> Claim:
        """From an identify body's user_id and email (ignored when not strings)."""
        return cls(user_key(user_id if isinstance(user_id, str) else None,
                            email if isinstance(email, str) else None))  # fmt: skip


@dataclass
class _Seen:
    count: int
    first: datetime
    last: datetime


@dataclass
class Tally:
    """One process's counts and refusals not yet in the database, by app_id."""

    counts: dict[tuple[str, str, str, str], _Seen] = field(default_factory=dict)
    users: dict[tuple[str, str, str], bool] = field(default_factory=dict)
    refusals: dict[str, deque[dict[str, Any]]] = field(default_factory=dict)

    def count(self, app_id: str, day: str, origin: str, metric: str, now: datetime) -> None:
        key = (app_id, day, origin, metric)
        seen = self.counts.get(key)
        if seen is None:
            self.counts[key] = _Seen(1, now, now)
        else:
            seen.count += 1
            seen.last = now

    @property
    def empty(self) -> bool:
        return not (self.counts or self.users or self.refusals)


class Installation:
    """The process's tally of widget calls, and the task that adds it to the database."""

    def __init__(self, database: Database, *, flush_seconds: float) -> None:
        self.database = database
        self.flush_seconds = flush_seconds
        self.tally = Tally()
        self._task: asyncio.Task[None] | None = None

    @property
    def counting(self) -> bool:
        return self.flush_seconds > 0

    def served(
        self,
        app_id: str,
        origin: str | None,
        *,
        visitor_id: str | None,
        route: str,
        warnings: tuple[str, ...] = (),
        identify: Claim | None = None,
        proven: bool = False,
    ) -> None:
        """A widget call that was answered (with its attribute-type warnings)."""
        now = datetime.now(UTC)
        day, where = day_of(now), origin or ""
        self.tally.count(app_id, day, where, CALLS, now)
        if identify is not None:
            metric = identify_metric(refused_code=None, proven=proven)
            self.tally.count(app_id, day, where, metric, now)
            self._user(app_id, day, identify, proven)
        for warning in warnings:
            code, _, key = warning.partition(":")
            self._refusal(app_id, now, route=route, status=200, code=code,
                          field=f"metadata.{key}" if key else None,
                          message=f"{key} was left out: not of its attribute's type",
                          origin=origin, visitor_id=visitor_id)  # fmt: skip

    def refused(
        self,
        app_id: str,
        origin: str | None,
        *,
        visitor_id: str | None,
        route: str,
        status: int,
        error: HalError,
        identify: Claim | None = None,
    ) -> None:
        """A widget call refused with `error` (its transaction wrote nothing)."""
        now = datetime.now(UTC)
        day, where = day_of(now), origin or ""
        self.tally.count(app_id, day, where, CALLS, now)
        if identify is not None:
            reason = getattr(error, "reason", error.code)  # a proof's: hash_mismatch, ...
            metric = identify_metric(refused_code=reason, proven=False)
            self.tally.count(app_id, day, where, metric, now)
            self._user(app_id, day, identify, False)
        self._refusal(app_id, now, route=route, status=status, code=error.code,
                      field=error.field, message=redact(error.message), origin=origin,
                      visitor_id=visitor_id)  # fmt: skip

    def _user(self, app_id: str, day: str, claim: Claim, proven: bool) -> None:
        if claim.user_key is not None:
            key = (app_id, day, claim.user_key)
            self.tally.users[key] = self.tally.users.get(key, False) or proven

    def _refusal(self, app_id: str, now: datetime, **values: Any) -> None:
        kept = self.tally.refusals.setdefault(app_id, deque(maxlen=KEEP_REFUSALS))
        kept.append({"created_at": now, **values})

    # --- adding the tally to the database ---------------------------------------------------

    async def flush(self) -> None:
        """Add the tally to the database in one transaction (kept for the next try if it
        fails)."""
        if self.tally.empty:
            return
        tally, self.tally = self.tally, Tally()
        try:
            await self.database.run(lambda tx: _add(tx, tally))
        except Exception:
            log.exception("installation counts not added; kept for the next flush")
            self._keep(tally)

    def _keep(self, older: Tally) -> None:
        for key, seen in older.counts.items():
            mine = self.tally.counts.get(key)
            if mine is None:
                self.tally.counts[key] = seen
            else:
                mine.count += seen.count
                mine.first = min(mine.first, seen.first)
        for user, proven in older.users.items():
            self.tally.users[user] = self.tally.users.get(user, False) or proven
        for app_id, rows in older.refusals.items():
            kept = self.tally.refusals.setdefault(app_id, deque(maxlen=KEEP_REFUSALS))
            kept.extendleft(reversed(rows))

    def start(self) -> None:
        if self.counting and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._run(), name="hal-installation")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self.flush()

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_seconds)
            await self.flush()


async def _add(tx: Tx, tally: Tally) -> None:
    app_ids = {key[0] for key in tally.counts} | set(tally.refusals)
    ids = await store.project_ids(tx, app_ids)  # an unknown app_id's calls are not counted
    await store.add_counts(tx, [
        {"project_id": ids[app_id], "day": day, "origin": origin, "metric": metric,
         "count": seen.count, "first_seen_at": seen.first, "last_seen_at": seen.last}
        for (app_id, day, origin, metric), seen in tally.counts.items() if app_id in ids
    ])  # fmt: skip
    await store.add_users(tx, [
        {"project_id": ids[app_id], "day": day, "user_key": key, "proven": proven}
        for (app_id, day, key), proven in tally.users.items() if app_id in ids
    ])  # fmt: skip
    rows = [
        {"project_id": ids[app_id], **row}
        for app_id, kept in tally.refusals.items() if app_id in ids
        for row in kept
    ]  # fmt: skip
    await store.add_refusals(tx, rows, keep=KEEP_REFUSALS)
    await store.drop_days_before(tx, day_of(tx.now - timedelta(days=MAX_DAYS)))


# --- what the admin reads ---------------------------------------------------------------------


@dataclass(frozen=True)
class OriginReport:
    origin: str | None
    calls: int
    verified: int
    unsigned: int
    failed: dict[str, int]
    first_seen_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True)
class InstallationReport:
    days: int
    origins: list[OriginReport]
    users_seen: int
    users_never_proven: int


async def report(tx: Tx, *, project_id: int, days: int) -> InstallationReport:
    """The project's widget calls over the last `days` days (today included), by origin."""
    if not 1 <= days <= MAX_DAYS:
        raise InvalidInput("invalid_field", f"days is 1 to {MAX_DAYS}", field="days")
    since = day_of(tx.now - timedelta(days=days - 1))
    by_origin: dict[str, dict[str, Any]] = {}
    for row in await store.counts_since(tx, project_id, since):
        seen = by_origin.setdefault(row.origin, {"metrics": {}, "first": row.first_seen_at,
                                                 "last": row.last_seen_at})  # fmt: skip
        seen["metrics"][row.metric] = int(row.count)
        seen["first"] = min(seen["first"], row.first_seen_at)
        seen["last"] = max(seen["last"], row.last_seen_at)
    origins = [
        OriginReport(
            origin=origin or None,
            calls=seen["metrics"].get(CALLS, 0),
            verified=seen["metrics"].get(VERIFIED, 0),
            unsigned=seen["metrics"].get(UNSIGNED, 0),
            failed={
                m.removeprefix(FAILED): n
                for m, n in seen["metrics"].items()
                if m.startswith(FAILED)
            },
            first_seen_at=seen["first"],
            last_seen_at=seen["last"],
        )
        for origin, seen in sorted(
            by_origin.items(), key=lambda item: -item[1]["metrics"].get(CALLS, 0)
        )
    ]
    seen_users, never = await store.users_since(tx, project_id, since)
    return InstallationReport(days, origins, seen_users, never)


@dataclass(frozen=True)
class RefusalPage:
    items: list[Any]
    next_cursor: str | None


async def refusals(tx: Tx, *, project_id: int, cursor: str | None, limit: int) -> RefusalPage:
    """The project's latest refused widget calls, newest first."""
    before = None
    if cursor is not None:
        if not cursor.isdigit() or len(cursor) > 19:
            raise InvalidInput("invalid_cursor", "cursor is not one this API gave", field="cursor")
        before = int(cursor)
    rows = await store.refusals_page(tx, project_id, before=before, limit=limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    return RefusalPage(rows, str(rows[-1].id) if more else None)

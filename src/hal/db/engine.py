"""Engine and transactions: SQLite (WAL, one writer) or PostgreSQL, one transaction per request.

`Database.run(work)` runs `work(tx)` in one transaction and retries it when a concurrent
request won a race (a unique key taken meanwhile, a deadlock, a serialization failure): the
work re-reads and decides again, so no duplicate is ever written. It is the one unit of work:
`tx.orm` is an ORM session on the same connection and transaction, for reads and for the
administration tables (projects, agents, tokens, webhooks); the CRM tables are written only
through `hal.db.store` (an ORM flush of a CRM row is refused). `Database.transaction(work)` is
`run` for code that only needs the ORM session. On SQLite, transactions that end while others
wait for their turn commit together (db/sqlite.py): each is still all or nothing and returns
only once committed.

Engines never log or raise with SQL parameters (`hide_parameters`): they hold personal data.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Generic, Protocol, TypeVar, overload

from sqlalchemy import CursorResult, Executable, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import Session
from sqlalchemy.pool import AsyncAdaptedQueuePool
from sqlalchemy.util import await_only

from hal.db import project_cache
from hal.db.changelog import NUMBER_BATCH, PendingChange, number_changes, write_changes
from hal.db.held import HeldConnections
from hal.db.models import CRM_MODELS
from hal.db.prepared import HELD_BY, Driver, Fetched, Prepared, prepared
from hal.db.project_cache import ProjectCache
from hal.db.sqlite import Ending, SQLiteCheckpointer, SQLiteLane, configure_sqlite, connect_sqlite
from hal.db.types import utcnow
from hal.domain.changes import ChangeType
from hal.domain.errors import NotFound
from hal.domain.projects import ProjectConfig

T = TypeVar("T")

RETRYABLE_SQLSTATES = {"40001", "40P01", "55P03"}  # serialization, deadlock, lock not available


def to_async_url(url: str) -> str:
    """Accept the URLs people write (`sqlite:///x.db`, `postgresql://...`) and pick our drivers."""
    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return parsed.set(drivername="sqlite+aiosqlite").render_as_string(hide_password=False)
    if backend in {"postgresql", "postgres"}:
        return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)
    raise ValueError(f"unsupported database URL {parsed.drivername!r}: use sqlite or postgresql")


@dataclass(frozen=True)
class Ran(Generic[T]):
    """A transaction's outcome in its turn: its result, how it ended, and what to do once
    it has committed."""

    result: T
    ending: Ending
    after: Callable[[], None]


async def _roll_back(connection: AsyncConnection, driver: Driver) -> None:
    """End what a failed transaction left open (SQLAlchemy's, or the driver's own); a
    connection that cannot is invalidated, so it is dropped."""
    try:
        if connection.in_transaction():
            await connection.rollback()
        await driver.end(commit=False)
    except Exception:
        if not (connection.invalidated or connection.closed):
            with contextlib.suppress(Exception):
                await connection.invalidate()


HELD_CONNECTIONS = 20  # PostgreSQL connections a process holds for its transactions
RECYCLE_SECONDS = 3600


def _is_retryable(exc: DBAPIError) -> bool:
    if isinstance(exc, IntegrityError) or exc.connection_invalidated:
        # A lost race, or a pooled connection found dead on first use (the server restarted):
        # the transaction did nothing, so running it again on a fresh connection is safe.
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None)
    return sqlstate in RETRYABLE_SQLSTATES


@functools.lru_cache(maxsize=65536)
def lock_key(*parts: object) -> int:
    """A signed 64-bit key for a PostgreSQL advisory lock on a business key (remembered: an
    import chunk's rows ask again for the keys the chunk locked)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


def _send_held_first(connection: Any, *_args: Any) -> None:
    """PostgreSQL: a statement run through SQLAlchemy (the ORM, a savepoint, a bulk write)
    sends the transaction's held writes first (Tx.write), in SQLAlchemy's greenlet."""
    driver = connection.info.get(HELD_BY)
    if driver is not None and driver.held:
        await_only(driver.send_held())


@event.listens_for(Session, "before_flush")
def _refuse_crm_writes(session: Session, _context: Any, _instances: Any) -> None:
    """The CRM tables have one write path, `hal.db.store`; the ORM only reads them."""
    for row in (*session.new, *session.dirty, *session.deleted):
        if isinstance(row, CRM_MODELS):
            raise RuntimeError(f"{type(row).__name__} rows are written through hal.db.store")


_ADVISORY_LOCKS = prepared(
    text("SELECT count(pg_advisory_xact_lock(key)) FROM unnest(CAST(:keys AS bigint[])) AS key")
)
# The same, its keys written in (sent with BEGIN, Tx.lock): sorted, locked in the array's order.
_ADVISORY_LOCKS_OF = (
    "SELECT count(pg_advisory_xact_lock(key)) FROM unnest('{{{}}}'::bigint[]) AS key"
)


class Restorable(Protocol):
    """What a savepoint takes back along with the database's writes (an import chunk's
    look-ahead and the writes it holds, db/store/lookahead.py)."""

    def save(self) -> None: ...

    def restore(self) -> None: ...

    def release(self) -> None: ...


@dataclass(slots=True)
class Tx:
    """One request's transaction: Core statements on its connection, locks, and its `now`."""

    connection: AsyncConnection
    dialect: str
    projects: ProjectCache
    # The transaction's time, fixed (`now`): what it writes is "now" for all of it.
    _now: datetime = field(default_factory=utcnow)
    _stamps: int = 0
    changes: list[PendingChange] = field(default_factory=list)
    # An import chunk's reads made once for all its rows (db/store/lookahead.py).
    lookahead: Restorable | None = None
    locked: set[int] = field(default_factory=set)  # advisory locks held (until the end)
    # Reads that hold for the rest of the transaction once made (after its locks).
    read_once: dict[object, Any] = field(default_factory=dict)
    # What this process learns once the transaction has committed (a cache to update).
    committed: list[Callable[[], None]] = field(default_factory=list)
    # Called with each prepared statement's SQL (Database.observe).
    observers: list[Callable[[str], None]] = field(default_factory=list)
    _savepoint: tuple[int, int, set[int] | None] | None = None
    _orm: AsyncSession | None = None
    _driver: Driver | None = None

    @property
    def orm(self) -> AsyncSession:
        """An ORM session in this transaction (made on first use): reads, and writes to the
        administration tables (flushed at the end). An object it loaded before a store write
        still shows the row as it was: a use case loads, decides, writes, then reads anew."""
        if self._orm is None:
            if not self.connection.in_transaction():
                # SQLite's transaction was begun on the driver (Database._begin): SQLAlchemy
                # joins it (no statement is sent), so the session does not own it.
                self.connection.sync_connection.begin()  # type: ignore[union-attr]
            self._orm = AsyncSession(bind=self.connection, autoflush=False, expire_on_commit=False)
            self._orm.info["tx"] = self
        return self._orm

    async def finish_orm(self) -> None:
        """Flush what the ORM session holds, before the change log is written."""
        if self._orm is not None:
            await self._orm.flush()

    async def close_orm(self) -> None:
        if self._orm is not None:
            await self._orm.close()  # its `info` stays, for what the commit must clear

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    def stamp(self) -> datetime:
        """A creation time for one upsert: `now` plus a microsecond more at each call, so the
        upsert knows a row is its own by the time it carries (db/store: `created`)."""
        self._stamps += 1
        return self.now + timedelta(microseconds=self._stamps)

    @property
    def now(self) -> datetime:
        return self._now

    async def project(self, app_id: str) -> ProjectConfig:
        """The project's settings (cached), or 404 `unknown_app` (deleted meanwhile)."""
        project = await self.projects.get(self.connection, app_id)
        if project is None:
            raise NotFound("unknown_app", "no such project", field="app_id")
        return project

    @overload
    async def execute(
        self, statement: Prepared, params: Mapping[str, Any] | list[dict[str, Any]] | None = None
    ) -> Fetched: ...

    @overload
    async def execute(
        self, statement: Executable, params: Mapping[str, Any] | list[dict[str, Any]] | None = None
    ) -> CursorResult[Any]: ...

    async def execute(
        self,
        statement: Prepared | Executable,
        params: Mapping[str, Any] | list[dict[str, Any]] | None = None,
    ) -> Fetched | CursorResult[Any]:
        """Run a statement in this transaction: a `Prepared` one on the driver directly
        (db/prepared.py), any other through SQLAlchemy."""
        if not isinstance(statement, Prepared):
            return await self.connection.execute(statement, params)
        driver = self._driver
        if driver is None:  # a transaction made by hand (tests): the connection it holds
            sync = self.connection.sync_connection
            assert sync is not None
            driver = self._driver = Driver(self.connection, sync.connection)
        form = statement.form(driver.dialect, params)
        if form.keys and isinstance(params, list):
            if len(params) != 1:
                # Rows back from many parameter sets: SQLAlchemy's multi-row INSERT RETURNING.
                return await self.connection.execute(statement.statement, params)
            params = params[0]
        for observe in self.observers:
            observe(form.sql)
        return await driver.run(form, params, begin=not statement.unlocked_read)

    async def write(
        self, statement: Prepared, params: Mapping[str, Any] | list[dict[str, Any]]
    ) -> None:
        """Run a write whose answer the caller does not read. PostgreSQL holds it to send with
        what the transaction sends next, at best its COMMIT (`Driver.hold`: one round trip
        for both); whatever runs on the connection before that sends it first, so nothing
        is read around it. SQLite runs it at once."""
        driver = self._driver
        if driver is not None and driver.postgres:
            form = statement.form(driver.dialect, params)
            if driver.hold(form, params):
                for observe in self.observers:
                    observe(form.sql)
                return
        await self.execute(statement, params)

    def record(
        self,
        project_id: int,
        type: ChangeType,
        data: dict[str, Any],
        *,
        visitor_row_id: int | None = None,
    ) -> None:
        """A change for the change log, written with this transaction (or not at all).
        `visitor_row_id`: the anonymous visitor a change names no contact for (erased with it)."""
        self.changes.append(PendingChange(project_id, ChangeType(type), data, visitor_row_id))

    async def savepoint(self, *, in_database: bool = True) -> None:
        """Mark a point `rollback_to_savepoint` can return to (one at a time): the database's
        writes and locks since, and this transaction's record of them (its changes, what
        it would teach this process's caches). `in_database=False`
        keeps it in memory only, for an import chunk's row whose writes the look-ahead holds
        (the row then runs no write of its own, see db/store/lookahead.py)."""
        if in_database:
            await self.connection.exec_driver_sql("SAVEPOINT hal_row")
        locked = set(self.locked) if in_database else None
        self._savepoint = (len(self.changes), len(self.committed), locked)
        if self.lookahead is not None:
            self.lookahead.save()

    async def rollback_to_savepoint(self) -> None:
        assert self._savepoint is not None
        recorded, learned, locked = self._savepoint
        if locked is not None:
            await self.connection.exec_driver_sql("ROLLBACK TO SAVEPOINT hal_row")
            self.locked = locked
        del self.changes[recorded:]
        del self.committed[learned:]
        if self.lookahead is not None:
            self.lookahead.restore()
        self._savepoint = None

    async def release_savepoint(self) -> None:
        assert self._savepoint is not None
        if self._savepoint[2] is not None:
            await self.connection.exec_driver_sql("RELEASE SAVEPOINT hal_row")
        if self.lookahead is not None:
            self.lookahead.release()
        self._savepoint = None

    async def lock(self, keys: Iterable[tuple[object, ...]]) -> None:
        """Serialize transactions on business keys (each a tuple such as `(project_id,
        "email", value)`): PostgreSQL advisory locks taken in one statement, in sorted order so
        two transactions never wait on each other. SQLite already runs one writer at a time."""
        if self.is_postgres:
            locks = sorted({lock_key(*key) for key in keys} - self.locked)
            if locks:
                if not await self._begin_locked(locks):
                    await self.execute(_ADVISORY_LOCKS, {"keys": locks})
                self.locked.update(locks)

    async def _begin_locked(self, locks: list[int]) -> bool:
        """The transaction's first locks sent with its BEGIN, one round trip for both (the
        keys are our own integers, written into the SQL); False when it had begun."""
        driver = self._driver
        if driver is None:
            return False
        sql = _ADVISORY_LOCKS_OF.format(",".join(str(int(lock)) for lock in locks))
        return await driver.begin_with(sql, self.observers)


class Database:
    """The engine, its session factory, and the per-request transaction helper."""

    def __init__(self, url: str, *, echo: bool = False, max_attempts: int = 8) -> None:
        self.url = to_async_url(url)
        self.dialect = make_url(self.url).get_backend_name()
        self.max_attempts = max_attempts
        self.checkpointer: SQLiteCheckpointer | None = None
        self._observers: list[Callable[[str], None]] = []
        if self.dialect == "sqlite":
            # One connection per process for transactions (`SQLiteLane`): requests queue for it
            # instead of spinning on SQLite's busy handler. Other processes still wait on
            # busy_timeout. The pool's second one serves what runs beside them (a readiness
            # ping, ANALYZE after an import chunk, migrations).
            path = make_url(self.url).database or ":memory:"
            self.engine = create_async_engine(
                self.url,
                echo=echo,
                async_creator=partial(connect_sqlite, path),
                poolclass=AsyncAdaptedQueuePool,
                pool_size=2,
                max_overflow=0,
                pool_timeout=60,
                hide_parameters=True,
            )
            configure_sqlite(self.engine, self._observers)
            # The process's one connection, held from first use to `dispose` (checking it
            # out of a pool and back cost as much as the repeat identify's read).
            self._lane = SQLiteLane(self.engine, self._observers)
            if path != ":memory:":
                self.checkpointer = SQLiteCheckpointer(path).start()
        else:
            self.engine = create_async_engine(
                self.url,
                echo=echo,
                # Transactions use the connections the process holds (`_connections`, at most
                # HELD_CONNECTIONS, taken from this pool and kept); the overflow serves what
                # runs beside them (a readiness ping, seeding). An overflow connection is
                # opened and closed around its use: transactions there made PostgreSQL start
                # a backend for each under load (bench/RESULTS.md).
                pool_size=HELD_CONNECTIONS,
                max_overflow=5,
                pool_recycle=RECYCLE_SECONDS,
                hide_parameters=True,
                # Short statements only: compiling a search's plan with LLVM cost 0.1 to 0.4 s
                # above jit_above_cost (bench/RESULTS.md, "Search").
                connect_args={"server_settings": {"jit": "off"}},
            )
            event.listen(self.engine.sync_engine, "before_cursor_execute", _send_held_first)
        # PostgreSQL: no pre-ping (a round trip per transaction): a dead held connection
        # fails its first statement, is invalidated and dropped, and the transaction retried.
        self._connections = HeldConnections(
            self.engine, size=HELD_CONNECTIONS, recycle_seconds=RECYCLE_SECONDS
        )
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.projects = ProjectCache()
        # Called after a transaction that wrote changes has committed (the live stream wakes).
        self.commit_listeners: list[Callable[[], None]] = []

    @contextlib.contextmanager
    def observe(self, listener: Callable[[str], None]) -> Iterator[None]:
        """Call `listener` with the SQL of every statement run meanwhile, prepared or not."""

        def executed(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
            listener(statement)

        event.listen(self.engine.sync_engine, "before_cursor_execute", executed)
        self._observers.append(listener)
        try:
            yield
        finally:
            self._observers.remove(listener)
            event.remove(self.engine.sync_engine, "before_cursor_execute", executed)

    @property
    def is_postgres(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def idle_changed(self) -> list[Callable[[int], None]]:
        """Listeners of held connections going idle (+1) or taken (-1), for the pool metrics."""
        return self._connections.idle_changed

    def _turn(self) -> AbstractAsyncContextManager[Any]:
        """SQLite: the process's transactions take its one connection in arrival order
        (db/sqlite.py). PostgreSQL's pool of 20 showed no such tail, and turns there cost
        throughput: it keeps the pool's order."""
        return contextlib.nullcontext() if self.is_postgres else self._lane.turn()

    async def _retrying(self, attempt_once: Callable[[], Awaitable[Ran[T]]]) -> T:
        for attempt in range(1, self.max_attempts + 1):
            try:
                async with self._turn():
                    ran = await attempt_once()
                if ran.ending.shared is not None:  # SQLite: committed with others (db/sqlite.py)
                    await asyncio.shield(ran.ending.shared.done)
                ran.after()
                return ran.result
            except DBAPIError as exc:
                if attempt == self.max_attempts or not _is_retryable(exc):
                    raise
            await asyncio.sleep(random.uniform(0, 0.005 * attempt))  # noqa: S311 (jitter)
        raise AssertionError("unreachable")

    async def run(self, work: Callable[[Tx], Awaitable[T]]) -> T:
        """Run `work` on a fresh `Tx` in one transaction, from scratch if it lost a race."""

        async def once() -> Ran[T]:
            ending = Ending()
            async with self._begin(ending) as (connection, driver):
                tx = Tx(connection, self.dialect, self.projects, observers=self._observers)
                tx._driver = driver
                try:
                    result = await work(tx)
                    await tx.finish_orm()
                    await write_changes(tx, tx.changes)
                finally:
                    await tx.close_orm()

            def after() -> None:  # once committed
                if tx._orm is not None:
                    project_cache.committed(tx._orm.info)
                for learn in tx.committed:
                    learn()
                if tx.changes:
                    self._committed()

            return Ran(result, ending, after)

        return await self._retrying(once)

    def _begin(self, ending: Ending) -> AbstractAsyncContextManager[tuple[AsyncConnection, Driver]]:
        """A connection in a new transaction, committed at the end (rolled back on error).

        Both engines begin it with its first statement that is not an unlocked read (the
        repeat identify's one read runs and ends alone). PostgreSQL: on a connection the
        process holds (db/held.py), ended on the driver unless SQLAlchemy joined it (then
        SQLAlchemy ends it). SQLite: on the held connection, begun
        (BEGIN IMMEDIATE) and ended on the sqlite3 connection itself (through SQLAlchemy, a
        third of a repeat identify's cost); a statement or the ORM run through SQLAlchemy
        begins or joins it, and SQLAlchemy then ends it."""
        return self._begin_postgres() if self.is_postgres else self._lane.begin(ending)

    @contextlib.asynccontextmanager
    async def _begin_postgres(self) -> AsyncIterator[tuple[AsyncConnection, Driver]]:
        connection, driver = await self._connections.take()
        try:
            yield connection, driver
        except BaseException:
            await _roll_back(connection, driver)
            raise
        else:
            if connection.in_transaction():
                await driver.send_held()
                await connection.commit()
            else:
                await driver.end(commit=True)
        finally:
            # Shielded: a second cancellation here must not lose the connection's place.
            await asyncio.shield(self._give_back(connection, driver))

    async def _give_back(self, connection: AsyncConnection, driver: Driver) -> None:
        driver.held.clear()  # a transaction's held writes die with it, sent or not
        if connection.in_transaction() or driver.adapter._transaction is not None:
            await _roll_back(connection, driver)  # a commit that failed
        await self._connections.give(connection, driver)

    def _committed(self) -> None:
        for listener in self.commit_listeners:
            listener()

    async def transaction(self, work: Callable[[AsyncSession], Awaitable[T]]) -> T:
        """`run` for work that only needs the ORM session."""
        return await self.run(lambda tx: work(tx.orm))

    async def number_changes(self) -> int:
        """Give committed changes their ids (PostgreSQL; see db/changelog.py), until none of an
        ended transaction is left; readers of the change log call it before they read."""
        if not self.is_postgres:
            return 0
        total = 0
        while True:
            numbered = await self.run(lambda tx: number_changes(tx.connection))
            total += numbered
            if numbered < NUMBER_BATCH:
                return total

    async def dispose(self) -> None:
        await self._connections.close()
        if not self.is_postgres:
            await self._lane.close()
        await self.engine.dispose()
        if self.checkpointer is not None:
            self.checkpointer.stop()

"""SQLite's side of the engine (db/engine.py): its one connection, held by the process, on which
transactions take turns; statements run inline on the event loop; WAL checkpoints on a thread.

**Shared commits.** A transaction that ends while others wait for their turn does not commit:
its writes stay in SQLite's open transaction, the next ones run in it, each inside a savepoint
of its own (rolled back alone if it fails), and one COMMIT, queued behind them, ends them all.
Each waits for that commit before it answers or tells anyone (commit listeners, caches), so no
one ever sees a write that could still be lost; a failed commit fails them all, each then run
again from scratch where `Database.run` retries (a lost race) or failed as its own commit would
have. A transaction that ends with no one waiting commits
at once, as before. On a WAL database a commit writes every page the transaction changed to
the log: transactions appending to the same tables and indexes share most of those pages, so a
commit for several costs little more than one (bench/RESULTS.md, "The hot path, fourth pass").
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hal.db.prepared import Driver, begin_immediate, run_sqlite

_SAVEPOINT = "SAVEPOINT hal_joined"
_RELEASE = "RELEASE hal_joined"
_ROLLBACK_TO = "ROLLBACK TO hal_joined"


class _InlineSQLiteConnection(aiosqlite.Connection):
    """aiosqlite, but each call runs on the event loop's thread instead of a worker thread.

    A SQLite call on an indexed table takes microseconds; the thread hand-off aiosqlite makes
    for each call (cursor, execute, fetch, close) cost about 470 us per statement on our
    2-core machines against 45 us inline (measured; see bench/RESULTS.md). The price: while
    another process holds the write lock, this process's loop waits with it (busy_timeout),
    which is why SQLite is the one-host default and PostgreSQL the multi-process store.

    `_execute` is aiosqlite's private hook (0.20-0.22, where every call goes through it); the
    dependency is pinned to that range and tests/integration/test_engine.py fails if a call
    stops running on the loop's thread.
    """

    async def _execute(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return fn(*args, **kwargs)

    # A transaction that joined a shared commit (`SQLiteLane`) runs inside a savepoint of its
    # own, begun before its first statement that writes or locks ("pending" until then).
    savepoint: str | None = None

    @property
    def sqlite(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for prepared statements (db/prepared.py)."""
        connection: sqlite3.Connection = self._conn
        return connection

    def open_savepoint(self, observers: Iterable[Callable[[str], None]]) -> None:
        """Begin the joined transaction's savepoint, if it is still to begin."""
        if self.savepoint == "pending":
            run_sqlite(self.sqlite, _SAVEPOINT, observers)
            self.savepoint = "open"


class SQLiteCheckpointer:
    """WAL checkpoints off the event loop. SQLite checkpoints on the committing connection by
    default (every 1,000 WAL pages), and a checkpoint fsyncs the database file: with calls
    inline, that stalled every request of the process. The serving connection therefore never
    checkpoints (`wal_autocheckpoint=0`); this thread, with its own connection, runs a PASSIVE
    checkpoint (it never waits for or blocks a writer) every `interval` seconds."""

    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path, self.interval = path, interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="hal-sqlite-checkpoint", daemon=True)

    def start(self) -> SQLiteCheckpointer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        connection = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        try:
            connection.execute("PRAGMA busy_timeout=1000")
            while not self._stop.wait(self.interval):
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error:
                    continue  # busy or locked: the next round checkpoints what this one could not
        finally:
            connection.close()


async def connect_sqlite(path: str) -> aiosqlite.Connection:
    def connect() -> sqlite3.Connection:
        return sqlite3.connect(path, check_same_thread=False, isolation_level=None)

    return await _InlineSQLiteConnection(connect, 64)


def configure_sqlite(engine: AsyncEngine, observers: list[Callable[[str], None]]) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let us issue BEGIN ourselves (pysqlite's implicit transactions defer the write lock).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA wal_autocheckpoint=0")  # SQLiteCheckpointer's thread does it
        cursor.close()

    @event.listens_for(engine.sync_engine, "before_cursor_execute")
    def _before_execute(connection: Any, *_args: Any) -> None:
        # A joined transaction's statement through SQLAlchemy (the ORM's) begins its savepoint
        # as a prepared statement does (db/prepared.py).
        inline = connection.connection.driver_connection
        if inline.savepoint == "pending":
            inline.open_savepoint(observers)

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        # Take the write lock up front: a read-then-write transaction can then never fail to
        # upgrade its lock, and identifies for one person are serialized across processes.
        # Sent on the sqlite3 connection itself (a third of a widget call's transaction cost
        # through SQLAlchemy's execution), and shown to the observers like any statement.
        sqlite = connection.connection.driver_connection.sqlite
        if not sqlite.in_transaction:  # else a prepared statement began it (SQLAlchemy joins)
            begin_immediate(sqlite, observers)


class Turns:
    """Transactions on the one connection, one at a time, in arrival order; `waiting` counts
    those queued."""

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        try:
            await self._lock.acquire()
        finally:
            self.waiting -= 1

    async def __aexit__(self, *_exc: object) -> None:
        self._lock.release()


@dataclass(eq=False)
class SharedCommit:
    """Transactions left in SQLite's open transaction, ended by one COMMIT (`done`)."""

    done: asyncio.Future[None]
    connection: AsyncConnection  # whose open transaction holds the members' writes


@dataclass(eq=False)
class Ending:
    """How a transaction ended on the lane: committed (`shared` None), or left in a shared
    commit it must wait for."""

    shared: SharedCommit | None = None


@dataclass(eq=False)
class SQLiteLane:
    """The process's one connection for transactions, and their turns and shared commits."""

    engine: AsyncEngine
    observers: list[Callable[[str], None]]
    _turns: tuple[asyncio.AbstractEventLoop, Turns] | None = None
    _held: AsyncConnection | None = None
    _driver: Driver | None = None
    _shared: SharedCommit | None = None
    _committing: set[asyncio.Task[None]] = field(default_factory=set)

    def turn(self) -> Turns:
        """SQLAlchemy's async pool hands a returned connection to whoever asks first: a request
        arriving at that moment takes it ahead of one already waiting, which then waits again
        at the back of the queue. On SQLite's single connection some requests waited seconds
        under load (identify p99 7 s; 98 ms in turns, bench/RESULTS.md). Turns keep arrival
        order."""
        loop = asyncio.get_running_loop()
        if self._turns is None or self._turns[0] is not loop:
            self._turns = (loop, Turns())
        return self._turns[1]

    @contextlib.asynccontextmanager
    async def begin(self, ending: Ending) -> AsyncIterator[tuple[AsyncConnection, Driver]]:
        """The held connection for one transaction, in its turn: begun (BEGIN IMMEDIATE) by its
        first statement that is not an unlocked read, or joined to the open shared commit;
        ended here, as `ending` tells (the module's docstring)."""
        # SQLite runs inline and an uncontended turn does not wait: without this, a caller
        # running transactions back to back would never let the loop's other tasks (webhook
        # delivery, the change feed) run.
        await asyncio.sleep(0)
        held, driver = await self._connection()
        inline = driver.adapter._connection
        sqlite = driver.sqlite
        shared = self._shared
        if shared is not None and (
            shared.done.done()
            or shared.done.get_loop() is not asyncio.get_running_loop()
            or shared.connection is not held
        ):
            shared = self._shared = None
        if shared is None and (held.get_transaction() is not None or sqlite.in_transaction):
            # Left open by a shared commit that never ran (its event loop ended, its task was
            # cancelled): its callers were never answered, nothing of it was promised.
            await self._roll_back(held, sqlite)
        inline.savepoint = "pending" if shared is not None else None
        try:
            yield held, driver
        except BaseException:
            joined, inline.savepoint = inline.savepoint, None
            if shared is None:
                await self._roll_back(held, sqlite)
            elif joined == "open":  # only this transaction's writes are undone
                run_sqlite(sqlite, _ROLLBACK_TO, self.observers)
                run_sqlite(sqlite, _RELEASE, self.observers)
            raise
        joined, inline.savepoint = inline.savepoint, None
        if shared is not None:
            if joined == "open":
                run_sqlite(sqlite, _RELEASE, self.observers)
            ending.shared = shared
        elif sqlite.in_transaction and self.turn().waiting:
            loop = asyncio.get_running_loop()
            ending.shared = self._shared = SharedCommit(loop.create_future(), held)
            task = loop.create_task(self._commit_shared(ending.shared))
            self._committing.add(task)  # kept until done: the loop holds tasks weakly
            task.add_done_callback(self._committing.discard)
        else:
            await self._commit(held, sqlite)

    async def _connection(self) -> tuple[AsyncConnection, Driver]:
        held, driver = self._held, self._driver
        if held is None or driver is None or held.closed or held.invalidated:
            held = self._held = await self.engine.connect()
            raw = await held.get_raw_connection()
            driver = self._driver = Driver(held, raw, observers=self.observers)
        return held, driver

    @staticmethod
    async def _commit(held: AsyncConnection, sqlite: sqlite3.Connection) -> None:
        if held.in_transaction():  # SQLAlchemy joined the transaction: it ends it
            await held.commit()
        elif sqlite.in_transaction:
            try:
                sqlite.commit()
            except sqlite3.Error as error:
                raise DBAPIError.instance("COMMIT", None, error, sqlite3.Error) from error

    @staticmethod
    async def _roll_back(held: AsyncConnection, sqlite: sqlite3.Connection) -> None:
        await held.rollback()  # also what a failed COMMIT through SQLAlchemy left pending
        sqlite.rollback()

    async def _commit_shared(self, shared: SharedCommit) -> None:
        """The shared commit, in its own turn behind the transactions that were waiting when
        it was opened (they join it first); a task of its own, so a member's cancellation
        never leaves the others waiting. A failed commit is rolled back in the same turn."""
        try:
            async with self.turn():
                if self._shared is shared:
                    self._shared = None
                held, driver = await self._connection()
                try:
                    if held is not shared.connection:
                        lost = sqlite3.OperationalError(
                            "the connection of this transaction was lost"
                        )
                        raise DBAPIError.instance(
                            "COMMIT", None, lost, sqlite3.Error, connection_invalidated=True
                        )
                    await self._commit(held, driver.sqlite)
                except Exception:
                    with contextlib.suppress(Exception):
                        await self._roll_back(held, driver.sqlite)
                    raise
        except Exception as error:
            shared.done.set_exception(error)
        except BaseException:
            shared.done.cancel()
            raise
        else:
            shared.done.set_result(None)

    async def close(self) -> None:
        if self._committing:
            await asyncio.gather(*self._committing, return_exceptions=True)
        if self._held is not None:
            await self._held.close()
            self._held = self._driver = None

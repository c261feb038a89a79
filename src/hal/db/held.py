"""PostgreSQL connections held by the process and handed to transactions in arrival order.

Checking a connection out of SQLAlchemy's pool and back around every transaction (a wrapper,
its transaction object, greenlet switches, the pool's reset) was a fifth of a repeat
identify's cost on PostgreSQL (bench/RESULTS.md, "The hot path, second pass"), as it was on
SQLite before its one connection was held. Here up to `size` connections are opened from the
engine's pool on demand and kept; a transaction takes one (the warmest idle one, else a new
one, else it waits its turn) and gives it back. A connection found dead is dropped with every
idle one (they likely died with it, as SQLAlchemy's pool invalidates itself), and one older
than `recycle_seconds` is closed when given back.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from hal.db.prepared import Driver

Held = tuple[AsyncConnection, Driver]


class HeldConnections:
    def __init__(self, engine: AsyncEngine, *, size: int, recycle_seconds: float) -> None:
        self.engine, self.size, self.recycle_seconds = engine, size, recycle_seconds
        self.opened = 0
        self._idle: list[Held] = []
        self._born: dict[int, float] = {}
        self._waiting: deque[asyncio.Future[Held | None]] = deque()
        # Called with -1 when an idle connection is taken and +1 when one becomes idle (the
        # pool metrics count connections in use: held idle ones are not).
        self.idle_changed: list[Callable[[int], None]] = []

    async def take(self) -> Held:
        """A connection for one transaction: the warmest idle one, a new one, or the next one
        given back (in the order transactions asked)."""
        while True:
            if self._idle:
                self._idled(-1)
                return self._idle.pop()
            if self.opened < self.size:
                return await self._open()
            waiter: asyncio.Future[Held | None] = asyncio.get_running_loop().create_future()
            self._waiting.append(waiter)
            try:
                handed = await waiter
            except asyncio.CancelledError:
                late = waiter.result() if waiter.done() and not waiter.cancelled() else None
                if late is not None:
                    await self.give(*late)  # handed over as this waiter gave up
                raise
            if handed is not None:
                return handed
            # None: a connection was dropped, so there is room to open one.

    async def give(self, connection: AsyncConnection, driver: Driver) -> None:
        """The connection back, its transaction ended: to the first waiting transaction, else
        idle; closed if it died (with the idle ones) or has lived its time."""
        if connection.invalidated or connection.closed:
            await self._drop(connection)
            for stale, _ in self._take_all_idle():
                await self._drop(stale)
            return
        if time.monotonic() - self._born.get(id(connection), 0) > self.recycle_seconds:
            await self._drop(connection)
            return
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result((connection, driver))
                return
        self._idle.append((connection, driver))
        self._idled(1)

    async def close(self) -> None:
        for connection, _ in self._take_all_idle():
            await self._drop(connection)

    async def _open(self) -> Held:
        self.opened += 1
        try:
            connection = await self.engine.connect()
            try:
                raw = await connection.get_raw_connection()
            except BaseException:
                await connection.close()
                raise
        except BaseException:
            self.opened -= 1
            self._wake_one()
            raise
        self._born[id(connection)] = time.monotonic()
        return connection, Driver(connection, raw)

    async def _drop(self, connection: AsyncConnection) -> None:
        self.opened -= 1
        self._born.pop(id(connection), None)
        self._wake_one()  # it may open one in its place
        with contextlib.suppress(Exception):
            await connection.close()

    def _take_all_idle(self) -> list[Held]:
        idle, self._idle = self._idle, []
        for _ in idle:
            self._idled(-1)
        return idle

    def _wake_one(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _idled(self, change: int) -> None:
        for listener in self.idle_changed:
            listener(change)

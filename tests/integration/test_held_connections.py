"""The connections a process holds for its transactions (db/held.py; PostgreSQL's, held by
`Database`): never more than its size, handed over in the order transactions asked, none lost
to a caller that gave up waiting, and a dead one dropped with the idle ones."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from hal.db.held import HeldConnections


def held(database, size: int = 2) -> HeldConnections:
    if not database.is_postgres:
        pytest.skip("PostgreSQL's connections are held this way; SQLite's one is held by Database")
    return HeldConnections(database.engine, size=size, recycle_seconds=3600)


async def test_transactions_wait_their_turn_and_never_open_more_than_the_size(database):
    connections = held(database)
    order: list[int] = []

    async def transaction(n: int) -> None:
        connection, driver = await connections.take()
        assert connections.opened <= 2
        order.append(n)
        await connection.execute(text("SELECT 1"))
        await connection.rollback()
        await asyncio.sleep(0.01)
        await connections.give(connection, driver)

    try:
        await asyncio.gather(*(transaction(n) for n in range(8)))
        # The first two open a connection each (whichever connects first goes first); the
        # others wait, and are served in the order they asked.
        assert sorted(order[:2]) == [0, 1] and order[2:] == list(range(2, 8))
        assert connections.opened == 2
    finally:
        await connections.close()
    assert connections.opened == 0


async def test_a_waiter_that_gives_up_loses_no_connection(database):
    connections = held(database)
    first, second = await connections.take(), await connections.take()
    waiting = asyncio.create_task(connections.take())
    await asyncio.sleep(0.01)
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    await connections.give(*first)
    again = await asyncio.wait_for(connections.take(), 5)  # not handed to the one that left
    await connections.give(*again)
    await connections.give(*second)
    assert connections.opened == 2
    await connections.close()


async def test_a_dead_connection_is_dropped_with_the_idle_ones_and_replaced(database):
    connections = held(database)
    first, second = await connections.take(), await connections.take()
    await connections.give(*second)  # idle now
    await first[0].invalidate()  # as a statement on a dead connection does
    await connections.give(*first)
    assert connections.opened == 0  # the idle one went with it
    connection, driver = await connections.take()
    assert (await connection.execute(text("SELECT 1"))).scalar() == 1
    await connection.rollback()
    await connections.give(connection, driver)
    await connections.close()

"""PostgreSQL: a transaction's first advisory locks go with its BEGIN, in one message
(`Tx.lock`, `Driver.begin_with`). They hold until the end as before, and a BEGIN whose SQL
fails leaves no transaction open on the connection."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from hal.db.engine import Database, Tx


def postgres(database: Database) -> Database:
    if not database.is_postgres:
        pytest.skip("advisory locks are PostgreSQL's; SQLite runs one writer at a time")
    return database


async def test_locks_sent_with_begin_hold_until_the_commit(database):
    db = postgres(database)
    order: list[str] = []
    first_locked = asyncio.Event()

    async def first(tx: Tx) -> None:
        await tx.lock([(1, "email", "ann@example.com")])
        first_locked.set()
        await asyncio.sleep(0.2)
        order.append("first ends")

    async def second(tx: Tx) -> None:
        await tx.lock([(1, "email", "ann@example.com")])
        order.append("second locked")

    async def second_after_first() -> None:
        await first_locked.wait()
        await db.run(second)

    await asyncio.gather(db.run(first), second_after_first())
    assert order == ["first ends", "second locked"]


async def test_a_begin_whose_sql_fails_leaves_no_transaction_open(database):
    db = postgres(database)

    async def failing(tx: Tx) -> None:
        assert tx._driver is not None
        await tx._driver.begin_with("SELECT 1 / 0", ())

    for _ in range(3):  # the process's connections, each used and given back
        with pytest.raises(DBAPIError, match="division by zero"):
            await db.run(failing)

    async def read(tx: Tx) -> int:
        await tx.lock([(1, "user_id", "u-1")])
        return int((await tx.execute(text("SELECT 1"))).scalar_one())

    assert [await db.run(read) for _ in range(3)] == [1, 1, 1]


async def test_a_transaction_begun_already_takes_its_locks_by_statement(database):
    db = postgres(database)
    sent: list[str] = []

    async def work(tx: Tx) -> None:
        await tx.execute(text("SELECT 1"))  # SQLAlchemy began the transaction
        await tx.lock([(1, "email", "bo@example.com")])

    with db.observe(sent.append):
        await db.run(work)
    assert [sql for sql in sent if "pg_advisory_xact_lock" in sql] == [
        "SELECT count(pg_advisory_xact_lock(key)) FROM unnest(CAST($1 AS bigint[])) AS key"
    ]


async def test_the_first_locks_go_with_begin(database):
    db = postgres(database)
    sent: list[str] = []

    async def work(tx: Tx) -> None:
        await tx.lock([(1, "email", "cy@example.com"), (1, "user_id", "cy")])

    with db.observe(sent.append):
        await db.run(work)
    [locks] = sent
    assert locks.startswith("SELECT count(pg_advisory_xact_lock(key)) FROM unnest('{")

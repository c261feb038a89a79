"""PostgreSQL: a write whose answer is not read (`Tx.write`) is held and sent with what the
transaction sends next, at best its COMMIT, its values written in as literals (db/literals.py).
Nothing may tell it from a write run at once: what the transaction reads after it sees it, a
rollback drops it, a failure fails the transaction and leaves the connection clean, and every
value comes back as the parameterized statement would have stored it."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import asyncpg.connection
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    MetaData,
    String,
    Table,
    bindparam,
    insert,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError

from hal.db.engine import Database, Tx
from hal.db.prepared import prepared
from hal.db.types import JSONDocument, UTCDateTime

PROBES = Table(
    "held_write_probes",
    MetaData(),
    Column("id", BigInteger, primary_key=True),
    Column("label", String),
    Column("doc", JSONDocument),
    Column("at", UTCDateTime),
    Column("flag", Boolean),
    schema="held_write_tests",  # out of the schema the migrations test compares
)
_INSERT = prepared(insert(PROBES))
_RELABEL = prepared(
    update(PROBES).where(PROBES.c.id == bindparam("probe")).values(label=bindparam("new"))
)
_READ = prepared(select(PROBES).where(PROBES.c.id == bindparam("probe")))
_IDS = itertools.count(1)


@pytest.fixture
async def db(database: Database) -> Database:
    if not database.is_postgres:
        pytest.skip("SQLite runs a held write at once: one process, no round trips")
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE SCHEMA IF NOT EXISTS held_write_tests"))
        await connection.run_sync(PROBES.metadata.create_all)
    return database


def _probe(**values: Any) -> dict[str, Any]:
    base = {"id": next(_IDS), "label": "a", "doc": {"k": 1},
            "at": datetime(2026, 12, 6, tzinfo=UTC), "flag": True}  # fmt: skip
    return {**base, **values}


async def _read(db: Database, probe: int) -> Any:
    return await db.run(lambda tx: _first(tx, probe))


async def _first(tx: Tx, probe: int) -> Any:
    return (await tx.execute(_READ, {"probe": probe})).first()


@pytest.fixture
def simple_queries(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The simple queries asyncpg sends (BEGIN, COMMIT, held writes) while the test runs."""
    sent: list[str] = []
    original = asyncpg.connection.Connection.execute

    async def execute(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        if not args:
            sent.append(query)
        return await original(self, query, *args, **kwargs)

    monkeypatch.setattr(asyncpg.connection.Connection, "execute", execute)
    return sent


async def test_a_held_write_goes_with_the_commit(db, simple_queries):
    row = _probe(label="it's held")

    async def work(tx: Tx) -> None:
        await _first(tx, 0)  # a prepared statement began the transaction
        await tx.write(_INSERT, row)

    await db.run(work)
    ends = [query for query in simple_queries if query.endswith("COMMIT")]
    assert len(ends) == 1 and "'it''s held'" in ends[0], simple_queries
    assert (await _read(db, row["id"])).label == "it's held"


async def test_what_the_transaction_reads_after_a_held_write_sees_it(db):
    row = _probe()

    async def work(tx: Tx) -> list[Any]:
        await _first(tx, 0)
        await tx.write(_INSERT, row)
        prepared_read = (await _first(tx, row["id"])).label
        await tx.write(_RELABEL, {"probe": row["id"], "new": "b"})
        core_read = await tx.execute(select(PROBES.c.label).where(PROBES.c.id == row["id"]))
        labels = [prepared_read, core_read.scalar_one()]
        await tx.write(_RELABEL, {"probe": row["id"], "new": "c"})
        orm_read = await tx.orm.scalar(select(PROBES.c.label).where(PROBES.c.id == row["id"]))
        return [*labels, orm_read]

    assert await db.run(work) == ["a", "b", "c"]


async def test_a_held_write_is_dropped_with_its_rollback(db):
    row = _probe()

    async def work(tx: Tx) -> None:
        await _first(tx, 0)
        await tx.write(_INSERT, row)
        raise RuntimeError("the work fails")

    with pytest.raises(RuntimeError):
        await db.run(work)
    assert await _read(db, row["id"]) is None


async def test_a_held_write_that_fails_fails_the_commit_and_leaves_the_connection_clean(db):
    row = _probe()
    await db.run(lambda tx: tx.execute(_INSERT, row))

    async def duplicate(tx: Tx) -> None:
        await _first(tx, 0)
        await tx.write(_INSERT, {**row, "label": "again"})

    with pytest.raises(IntegrityError):
        await db.run(duplicate)  # retried as a lost race, then raised
    # Every held connection answers a new transaction, and the first row stands.
    for _ in range(25):
        assert (await _read(db, row["id"])).label == "a"


async def test_a_write_before_the_transaction_began_runs_at_once(db, simple_queries):
    row = _probe()

    async def work(tx: Tx) -> None:
        await tx.write(_INSERT, row)  # nothing to hold it in yet: it begins the transaction

    await db.run(work)
    assert not any("held_write_probes" in query for query in simple_queries)
    assert await _read(db, row["id"]) is not None


_TEXT = st.text(st.characters(blacklist_categories=["Cs"], blacklist_characters="\x00"))
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=8,
)


@settings(max_examples=60, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(
    label=st.none() | _TEXT,
    doc=_JSON,
    at=st.datetimes(timezones=st.just(UTC)),
    flag=st.none() | st.booleans(),
)
async def test_a_held_write_stores_what_the_parameterized_one_stores(db, label, doc, at, flag):
    held, bound = _probe(label=label, doc=doc, at=at, flag=flag), _probe()
    bound.update({key: held[key] for key in ("label", "doc", "at", "flag")})

    async def work(tx: Tx) -> None:
        await tx.execute(_INSERT, bound)  # begins the transaction, parameters bound
        await tx.write(_INSERT, held)  # held: sent with the COMMIT, values written in

    await db.run(work)
    stored_held, stored_bound = await _read(db, held["id"]), await _read(db, bound["id"])
    assert stored_held[1:] == stored_bound[1:]
    assert (stored_held.label, stored_held.doc, stored_held.at) == (label, doc, at)


async def test_a_held_write_that_fails_fails_the_statement_sent_after_it(db):
    row = _probe()
    await db.run(lambda tx: tx.execute(_INSERT, row))
    reached: list[str] = []

    async def duplicate_then_read(tx: Tx) -> None:
        await _first(tx, 0)
        await tx.write(_INSERT, {**row, "label": "again"})
        await tx.execute(select(PROBES.c.label).where(PROBES.c.id == row["id"]))  # SQLAlchemy's
        reached.append("read")

    with pytest.raises(IntegrityError):
        await db.run(duplicate_then_read)
    assert reached == []
    assert (await _read(db, row["id"])).label == "a"

"""SQLite's shared commits (db/sqlite.py): transactions that end while others wait for their
turn commit together, each in a savepoint of its own; none answers before that commit; one
that fails undoes only its own writes; a caller that goes away leaves no one waiting."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import Column, MetaData, String, Table, insert, text
from sqlalchemy.exc import IntegrityError

from hal.db.engine import Database, Tx
from hal.db.prepared import prepared

ROWS = Table("shared", MetaData(), Column("x", String, primary_key=True))
INSERT = prepared(insert(ROWS))


@pytest.fixture
async def lane(tmp_path: Path) -> AsyncIterator[tuple[Database, Path]]:
    path = tmp_path / "shared.db"
    database = Database(f"sqlite:///{path}", max_attempts=2)
    async with database.engine.begin() as connection:
        await connection.execute(text("CREATE TABLE shared (x TEXT PRIMARY KEY)"))
    try:
        yield database, path
    finally:
        await database.dispose()


def committed(path: Path) -> set[str]:
    """What another connection reads: only what was committed."""
    with sqlite3.connect(path) as connection:
        return {row[0] for row in connection.execute("SELECT x FROM shared")}


async def _insert(tx: Tx, value: str, *, prepared_statement: bool = True) -> None:
    if prepared_statement:
        await tx.execute(INSERT, {"x": value})
    else:  # through SQLAlchemy (the ORM's way)
        await tx.execute(text("INSERT INTO shared (x) VALUES (:x)"), {"x": value})


async def test_waiting_transactions_commit_together_and_answer_only_once_committed(lane):
    database, path = lane
    statements: list[str] = []
    seen_on_return: dict[str, bool] = {}

    async def one(value: str) -> None:
        await database.run(lambda tx: _insert(tx, value, prepared_statement=value[-1] in "02468"))
        seen_on_return[value] = value in committed(path)

    with database.observe(statements.append):
        await asyncio.gather(*(one(f"v{i}") for i in range(10)))
    assert committed(path) == {f"v{i}" for i in range(10)}
    assert all(seen_on_return.values()), seen_on_return  # answered after its commit
    begun = statements.count("BEGIN IMMEDIATE")
    joined = statements.count("SAVEPOINT hal_joined")
    assert joined >= 5 and begun + joined == 10, statements  # most joined another's commit


async def test_a_transaction_with_no_one_waiting_commits_alone(lane):
    database, path = lane
    statements: list[str] = []
    with database.observe(statements.append):
        await database.run(lambda tx: _insert(tx, "alone"))
        assert committed(path) == {"alone"}
    assert "SAVEPOINT hal_joined" not in statements, statements


async def test_a_failing_transaction_undoes_only_its_own_writes(lane):
    database, path = lane
    statements: list[str] = []

    async def fails_in_code(tx: Tx) -> None:
        await _insert(tx, "b")
        raise ValueError("refused after a write")

    async def fails_in_the_database(tx: Tx) -> None:
        await _insert(tx, "d", prepared_statement=False)
        await _insert(tx, "a")  # taken by the first transaction, in the same open one

    async def writes_twice(tx: Tx) -> None:
        await _insert(tx, "c", prepared_statement=False)
        await _insert(tx, "c2")

    with database.observe(statements.append):
        outcomes = await asyncio.gather(
            database.run(lambda tx: _insert(tx, "a")),
            database.run(fails_in_code),
            database.run(fails_in_the_database),
            database.run(writes_twice),
            return_exceptions=True,
        )
    assert outcomes[0] is None and outcomes[3] is None, outcomes
    assert isinstance(outcomes[1], ValueError), outcomes
    assert isinstance(outcomes[2], IntegrityError), outcomes  # run again, then refused
    assert committed(path) == {"a", "c", "c2"}
    assert "ROLLBACK TO hal_joined" in statements, statements


async def test_a_caller_gone_while_its_commit_waits_leaves_no_one_waiting(lane):
    database, path = lane
    tasks: dict[str, asyncio.Task[None]] = {}

    async def cancels_b(tx: Tx) -> None:
        tasks["b"].cancel()  # b ended its turn: it waits for the shared commit
        await _insert(tx, "c")

    tasks["a"] = asyncio.create_task(database.run(lambda tx: _insert(tx, "a")))
    tasks["b"] = asyncio.create_task(database.run(lambda tx: _insert(tx, "b")))
    tasks["c"] = asyncio.create_task(database.run(cancels_b))
    done = await asyncio.wait_for(asyncio.gather(*tasks.values(), return_exceptions=True), 10)
    assert done[0] is None and done[2] is None, done
    assert isinstance(done[1], asyncio.CancelledError), done
    # b's write was in the shared transaction when its caller went away: it is committed,
    # as a write whose commit ran just before the cancellation is.
    assert committed(path) == {"a", "b", "c"}


async def test_a_failed_shared_commit_runs_each_of_its_transactions_again(lane):
    """The COMMIT itself fails (a deferred foreign key, checked only then): every member is
    told, and each runs again from scratch, as after a lost race."""
    database, path = lane
    async with database.engine.begin() as connection:
        await connection.execute(text(
            "CREATE TABLE child (parent TEXT REFERENCES shared (x) DEFERRABLE INITIALLY DEFERRED)"
        ))  # fmt: skip
    runs = {"a": 0, "child": 0}

    async def writes_a(tx: Tx) -> None:
        runs["a"] += 1
        await _insert(tx, "a")

    async def orphan_once(tx: Tx) -> None:
        runs["child"] += 1
        parent = "nobody" if runs["child"] == 1 else None  # then a child of no one: allowed
        await tx.execute(text("INSERT INTO child (parent) VALUES (:p)"), {"p": parent})

    await asyncio.gather(database.run(writes_a), database.run(orphan_once))
    assert runs == {"a": 2, "child": 2}
    assert committed(path) == {"a"}
    with sqlite3.connect(path) as connection:
        assert connection.execute("SELECT parent FROM child").fetchall() == [(None,)]


async def test_a_refused_call_among_others_leaves_nothing_behind(widget, project, database):
    """An attacker's calls on a verified user's visitor, without its session token, sent among
    other visitors' tracks (on SQLite they share commits): refused, and nothing of them is
    stored, not even the visitor's last_seen_at, which the call writes before it is refused."""
    from datetime import timedelta

    from sqlalchemy import func, select, update

    from hal.db.models import Event, Visitor
    from tests.factories import unique

    victim = unique("v")
    signed = await widget.identify(project, visitor_id=victim, user_id=unique("u"), signed=True)
    assert signed.status_code == 200, signed.text
    contact_id = signed.json()["contact"]["id"]

    async def seen_two_minutes_ago(tx: Tx) -> None:
        await tx.execute(update(Visitor).where(Visitor.visitor_key == victim)
                         .values(last_seen_at=tx.now - timedelta(minutes=2)))  # fmt: skip

    async def victim_state(tx: Tx) -> tuple[object, int]:
        seen = select(Visitor.last_seen_at).where(Visitor.visitor_key == victim)
        events = select(func.count()).select_from(Event).where(Event.contact_id == contact_id)
        return (await tx.execute(seen)).scalar_one(), (await tx.execute(events)).scalar_one()

    await database.run(seen_two_minutes_ago)
    before = await database.run(victim_state)
    others = [unique("o") for _ in range(8)]
    calls = [widget.call("track", project, visitor, event="page") for visitor in others[:4]]
    calls += [
        widget.call("track", project, victim, event="stolen", event_id=unique("e")),
        widget.set_properties(project, victim, {"plan": "free"}),
    ]
    calls += [widget.call("track", project, visitor, event="page") for visitor in others[4:]]
    answers = await asyncio.gather(*calls)
    statuses = [answer.status_code for answer in answers]
    assert statuses == [200] * 4 + [401, 401] + [200] * 4, [a.text for a in answers]
    assert await database.run(victim_state) == before

    async def tracked(tx: Tx) -> int:
        query = (select(func.count()).select_from(Event).join(Visitor)
                 .where(Visitor.visitor_key.in_(others)))  # fmt: skip
        return int((await tx.execute(query)).scalar_one())

    assert await database.run(tracked) == len(others)

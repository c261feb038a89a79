"""Prepared statements (db/prepared.py) answer what SQLAlchemy answers for the same statement,
in the same transaction, with the same exceptions, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import bindparam, insert, select, update
from sqlalchemy.exc import IntegrityError

from hal.db.engine import Database, Tx
from hal.db.prepared import prepared
from hal.db.store.base import COMPANIES, VISITORS
from tests.factories import unique

_VISITOR = select(VISITORS).where(
    VISITORS.c.project_id == bindparam("project_id"),
    VISITORS.c.visitor_key == bindparam("visitor_key"),
)
_ADD_VISITOR = insert(VISITORS)  # created_at and last_seen_at: Python-side defaults
_RENAME = update(COMPANIES).where(COMPANIES.c.id == bindparam("company_row_id"))


async def _project_id(database: Database, app_id: str) -> int:
    return (await database.run(lambda tx: tx.project(app_id))).id


async def test_a_prepared_read_answers_as_sqlalchemy_does(database: Database, project):
    project_id = await _project_id(database, project.app_id)
    key = unique("v")
    values = {"project_id": project_id, "visitor_key": key, "properties": {"plan": "pro", "n": 1},
              "verified": True, "signed_company_ids": ["a", "b"]}  # fmt: skip

    async def work(tx: Tx) -> tuple[Any, Any]:
        await tx.execute(prepared(_ADD_VISITOR), values)
        params = {"project_id": project_id, "visitor_key": key}
        mine = (await tx.execute(prepared(_VISITOR), params)).one()
        theirs = (await tx.execute(_VISITOR, params)).one()
        return mine, theirs

    mine, theirs = await database.run(work)
    assert tuple(mine) == tuple(theirs)
    assert mine._mapping == dict(theirs._mapping)
    assert mine.properties == {"plan": "pro", "n": 1} and mine.verified is True
    assert isinstance(mine.created_at, datetime) and mine.created_at.tzinfo is not None
    assert abs(mine.created_at - datetime.now(UTC)).total_seconds() < 60  # computed per call


async def test_prepared_writes_belong_to_the_transaction(database: Database, project):
    project_id = await _project_id(database, project.app_id)
    key = unique("v")
    params = {"project_id": project_id, "visitor_key": key}

    async def write_then_fail(tx: Tx) -> None:
        await tx.execute(prepared(_ADD_VISITOR), {**params, "properties": {}})
        raise RuntimeError("the use case failed")

    with pytest.raises(RuntimeError):
        await database.run(write_then_fail)
    found = await database.run(lambda tx: tx.execute(prepared(_VISITOR), params))
    assert found.first() is None


async def test_a_lost_race_is_sqlalchemys_integrity_error(database: Database, project):
    """What makes Database.run retry a transaction: the same exception as SQLAlchemy's."""
    project_id = await _project_id(database, project.app_id)
    row = {"project_id": project_id, "visitor_key": unique("v"), "properties": {}}
    await database.run(lambda tx: tx.execute(prepared(_ADD_VISITOR), row))
    attempts = 0

    async def duplicate(tx: Tx) -> None:
        nonlocal attempts
        attempts += 1
        await tx.execute(prepared(_ADD_VISITOR), row)

    with pytest.raises(IntegrityError):
        await database.run(duplicate)
    assert attempts == database.max_attempts  # retried as a lost race, then given up


async def test_an_update_sets_the_columns_its_parameters_name(database: Database, project):
    project_id = await _project_id(database, project.app_id)
    external = unique("co")

    company = {"project_id": project_id, "external_id": external, "name": "Before",
               "metadata": {}, "search_metadata": {}}  # fmt: skip

    async def work(tx: Tx) -> Any:
        created = await tx.execute(insert(COMPANIES).returning(COMPANIES.c.id), company)
        company_id = created.scalar_one()
        renamed = await tx.execute(prepared(_RENAME), {"company_row_id": company_id, "name": "A"})
        staged = await tx.execute(prepared(_RENAME), {"company_row_id": company_id, "stage": "S"})
        row = (await tx.execute(select(COMPANIES).where(COMPANIES.c.id == company_id))).one()
        return renamed.rowcount, staged.rowcount, row

    renamed, staged, row = await database.run(work)
    assert (renamed, staged) == (1, 1)
    assert (row.name, row.stage) == ("A", "S")


async def test_observers_see_prepared_statements(database: Database, project):
    project_id = await _project_id(database, project.app_id)
    seen: list[str] = []
    params = {"project_id": project_id, "visitor_key": unique("v")}
    with database.observe(seen.append):
        await database.run(lambda tx: tx.execute(prepared(_VISITOR), params))
    assert any("FROM visitors" in sql for sql in seen), seen


def test_a_statement_whose_sql_depends_on_its_values_is_refused(database: Database):
    in_list = select(VISITORS.c.id).where(VISITORS.c.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="cannot be prepared"):
        prepared(in_list).form(database.engine.dialect, {"ids": [1, 2]})


async def test_the_same_parameters_in_another_order_bind_the_same_values(
    database: Database, project
):
    """A form is found by the parameters' names as given: another order is another form of
    the same statement, binding each value to its own column."""
    project_id = await _project_id(database, project.app_id)
    keys = unique("v"), unique("v")
    given = {"project_id": project_id, "properties": {"n": 1}, "verified": True}
    first = {**given, "visitor_key": keys[0]}
    second = dict(reversed(list({**given, "visitor_key": keys[1]}.items())))
    reordered = [first, second]
    add = prepared(_ADD_VISITOR)  # one statement, two forms

    async def work(tx: Tx) -> list[Any]:
        for params in reordered:
            await tx.execute(add, params)
        found = [(await tx.execute(prepared(_VISITOR), {"visitor_key": key,
                                                        "project_id": project_id})).one()
                 for key in keys]  # fmt: skip
        return [(row.visitor_key, row.properties, row.verified) for row in found]

    assert list(reordered[0]) != list(reordered[1])
    assert await database.run(work) == [(key, {"n": 1}, True) for key in keys]

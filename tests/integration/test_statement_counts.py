"""A regression guard that is not a timing: how many SQL statements a widget call runs
(docs/decisions.md, "The write path"). Counted on the real engine, on SQLite and PostgreSQL."""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from hal.db.engine import Database
from hal.domain.csv_import import ImportKind
from hal.domain.limits import Limits
from hal.services import imports
from tests.factories import unique

# What the widget paths reach now (SQLite counts its BEGIN; PostgreSQL its advisory lock):
# hold them, and raise one only with a reason in bench/RESULTS.md.
# A call that changes something adds one for the change log (its rows; on SQLite their insert
# advances the project's counter too, migration 0020). A new user's identify is 8 on SQLite,
# 6 on PostgreSQL (its visitor upserted with its contacts read, its company upserted and
# linked: one statement each); a returning one's 6 and 3.
RETURNING_IDENTIFY = 6
NEW_IDENTIFY = 8
RETURNING_IDENTIFY_POSTGRES = 3
NEW_IDENTIFY_POSTGRES = 6
TRACK = 4
SET_PROPERTIES = 4


@contextmanager
def counting(database: Database) -> Iterator[list[str]]:
    """The first word of every statement run meanwhile, prepared (db/prepared.py) or not."""
    statements: list[str] = []
    with database.observe(lambda sql: statements.append(sql.split(None, 1)[0].upper())):
        yield statements


def _user(project, user_id: str) -> dict[str, Any]:
    return {
        "user_id": user_id,
        "email": f"{user_id}@example.com",
        "name": "User",
        "metadata": {"plan": "enterprise"},
        "company": {"id": "acme", "name": "Acme", "stage": "Qualified", "metadata": {"a": 1}},
        "signed": True,
    }


async def test_identify_runs_a_bounded_number_of_statements(widget, project, database):
    await widget.identify(project, **_user(project, "warm"))  # the project is cached now
    user_id = unique("u")
    with counting(database) as new_user:
        first = await widget.identify(project, visitor_id=user_id, **_user(project, user_id))
    assert first.status_code == 200, first.text
    with counting(database) as returning_user:
        again = await widget.identify(project, visitor_id=user_id, **_user(project, user_id))
    assert again.status_code == 200, again.text
    assert len(new_user) <= NEW_IDENTIFY, new_user
    assert len(returning_user) <= RETURNING_IDENTIFY, returning_user
    if database.is_postgres:
        assert len(new_user) <= NEW_IDENTIFY_POSTGRES, new_user
        assert len(returning_user) <= RETURNING_IDENTIFY_POSTGRES, returning_user


async def test_track_and_set_properties_run_a_bounded_number_of_statements(
    widget, project, database
):
    visitor = unique("v")
    # `seats` is defined here: its first write ever costs one statement more (the definition).
    await widget.identify(project, visitor_id=visitor, user_id=visitor, metadata={"seats": 1})
    with counting(database) as track:
        tracked = await widget.call("track", project, visitor, event="seen", event_id=unique("e"))
    assert tracked.status_code == 200, tracked.text
    with counting(database) as properties:
        changed = await widget.set_properties(project, visitor, {"seats": 3})
    assert changed.status_code == 200, changed.text
    assert len(track) <= TRACK, track
    assert len(properties) <= SET_PROPERTIES, properties


async def test_a_returning_user_naming_another_company_reads_its_companies_with_the_upsert(
    widget, project, database
):
    """A returning user's identify naming another company answers every company of the
    contact, by id; PostgreSQL reads the others in the statement that upserts and links the
    named one, so no read of them follows (SQLite reads them after, its statements cost no
    round trip)."""
    user = unique("u")
    for company in ("c-co", "a-co"):
        body = {**_user(project, user), "company": {"id": company}}
        assert (await widget.identify(project, visitor_id=user, **body)).status_code == 200
    body = {**_user(project, user), "company": {"id": "b-co", "name": "B"}}
    statements: list[str] = []
    with database.observe(statements.append):
        answer = await widget.identify(project, visitor_id=user, **body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["company_ids"] == ["a-co", "b-co", "c-co"]
    assert answer.json()["active_company"]["id"] == "b-co"
    reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT COMPANIES")]
    assert len(reads) == (0 if database.is_postgres else 1), statements


# An import chunk (db/store/lookahead.py): a few statements for the chunk, whatever its rows
# (its people's advisory locks on PostgreSQL among them); the writes are set-based. The job
# around an upload (its row, its lease, GETs following it) is not counted here.
IMPORT_CHUNK = 20


async def test_an_import_runs_about_one_statement_a_new_contact(team, database):
    from tests.integration.test_imports import counts, upload

    assert counts(await upload(team, "id\nacme\nbeta\n", "companies")) == (2, 0, 0, 0)
    for start, size in ((0, 40), (40, 400)):
        rows = "".join(f"u{i},u{i}@example.com,{('acme', 'beta')[i % 2]}\n"
                       for i in range(start, start + size))  # fmt: skip
        file = imports.read_import(
            ImportKind.CONTACTS, io.StringIO("user_id,email,company_id\n" + rows), Limits()
        )
        with counting(database) as statements:
            done = await imports.import_rows(
                db=database, app_id=team.project.app_id, file=file, limits=Limits()
            )
        assert (done.created, done.failed) == (size, 0)
        assert len(statements) <= IMPORT_CHUNK, statements


# A repeat identify (README "Identify"): the session token vouches for the binding and
# nothing would change: its one read begins no transaction, on either engine.
REPEAT_IDENTIFY = 2
WRITES = ("INSERT", "UPDATE", "DELETE")


async def _signed_in(widget, project, user_id: str) -> tuple[dict[str, Any], str]:
    body = {"visitor_id": user_id, **_user(project, user_id)}
    first = await widget.identify(project, **body)
    assert first.status_code == 200, first.text
    return body, first.json()["session_token"]


async def test_a_repeat_identify_reads_once_and_writes_nothing(widget, project, database):
    body, token = await _signed_in(widget, project, unique("u"))
    before = await widget.identify(project, token=token, **body)
    with counting(database) as repeat:
        again = await widget.identify(project, token=token, **body)
    assert again.status_code == 200, again.text
    assert len(repeat) <= REPEAT_IDENTIFY, repeat
    assert not any(statement in WRITES for statement in repeat), repeat
    same = {k: v for k, v in again.json().items() if k != "session_token"}
    assert same == {k: v for k, v in before.json().items() if k != "session_token"}
    assert again.json()["session_token"]


async def test_a_repeat_that_differs_in_anything_writes(widget, project, database):
    body, token = await _signed_in(widget, project, unique("u"))
    changes = {
        "metadata": {**body, "metadata": {"plan": "free"}},
        "company": {**body, "company": {**body["company"], "id": unique("co")}},
        "company_ids": {**body, "company_ids": [unique("co")]},
        "stage": {**body, "company": {**body["company"], "stage": "Customer"}},
        "name": {**body, "name": "Someone Else"},
    }
    for what, changed in changes.items():
        with counting(database) as statements:
            answer = await widget.identify(project, token=token, **changed)
        assert answer.status_code == 200, (what, answer.text)
        assert any(statement in WRITES for statement in statements), what


async def test_a_repeat_that_brings_a_proof_writes(widget, project, database):
    user_id = unique("u")
    unsigned = {"visitor_id": user_id, **_user(project, user_id), "signed": False}
    first = await widget.identify(project, **unsigned)
    token = first.json()["session_token"]
    assert first.json()["contact"]["verified"] is False
    again = await widget.identify(project, token=token, **unsigned)
    with counting(database) as statements:
        proven = await widget.identify(project, token=again.json()["session_token"],
                                       **{**unsigned, "signed": True})  # fmt: skip
    assert proven.json()["contact"]["verified"] is True
    assert any(statement in WRITES for statement in statements), statements


async def test_last_seen_moves_at_most_once_a_minute(widget, project, database):
    from datetime import timedelta

    from sqlalchemy import update

    from hal.db.models import Contact

    body, token = await _signed_in(widget, project, unique("u"))
    detail = (await widget.identify(project, token=token, **body)).json()["contact"]

    async def seen_two_minutes_ago(tx):
        await tx.execute(
            update(Contact).where(Contact.id == detail["id"])
            .values(last_seen_at=tx.now - timedelta(minutes=2))
        )  # fmt: skip

    await database.run(seen_two_minutes_ago)
    with counting(database) as due:
        await widget.identify(project, token=token, **body)
    assert "UPDATE" in due, due  # a minute has passed: last_seen_at is written
    with counting(database) as repeat:
        await widget.identify(project, token=token, **body)
    assert not any(statement in WRITES for statement in repeat), repeat


async def test_set_properties_that_change_nothing_write_nothing_to_the_contact(
    widget, project, database
):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id=visitor, metadata={"seats": 1})
    await widget.set_properties(project, visitor, {"seats": 3})
    with counting(database) as same:
        answer = await widget.set_properties(project, visitor, {"seats": 3})
    assert answer.status_code == 200, answer.text
    assert len(same) <= SET_PROPERTIES - 1, same  # no UPDATE of the contact


async def test_a_visitor_is_written_as_seen_at_most_once_a_minute(widget, project, database):
    """track, set-properties and the other calls that are not an identify read the visitor;
    its last_seen_at is written only when a minute has passed (hal.domain.matching)."""
    from datetime import timedelta

    from sqlalchemy import select, update

    from hal.db.models import Visitor

    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id=visitor)
    statements: list[str] = []

    async def call() -> None:
        statements.clear()
        with database.observe(lambda sql: statements.append(" ".join(sql.split()).lower())):
            answer = await widget.call("track", project, visitor, event="seen")
        assert answer.status_code == 200, answer.text

    def visitor_writes() -> list[str]:
        return [s for s in statements if s.startswith(("update visitors", "insert into visitors"))]

    async def seen_at(tx):
        query = select(Visitor.last_seen_at).where(Visitor.visitor_key == visitor)
        return (await tx.execute(query)).scalar_one()

    await call()
    assert visitor_writes() == [], statements  # identify saw it within the minute
    two_minutes_ago = (await database.run(seen_at)) - timedelta(minutes=2)

    async def seen_two_minutes_ago(tx):
        await tx.execute(update(Visitor).where(Visitor.visitor_key == visitor)
                         .values(last_seen_at=two_minutes_ago))  # fmt: skip

    await database.run(seen_two_minutes_ago)
    await call()
    assert len(visitor_writes()) == 1, statements
    moved = await database.run(seen_at)
    assert moved > two_minutes_ago + timedelta(minutes=1)
    await call()
    assert visitor_writes() == [], statements
    assert await database.run(seen_at) == moved

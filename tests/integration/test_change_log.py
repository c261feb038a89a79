"""README "Change log and live stream": every committed change has its change, written in
the same transaction; a refused request writes none; ids grow per project."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from hal.db.changelog import MANY, PendingChange, write_changes
from hal.db.engine import Tx
from hal.db.models import Change, Project
from hal.domain.changes import ChangeType
from hal.services.change_feed import ChangeFeed
from tests.factories import make_project, number_all_changes, unique, unique_email


async def changes(database, project, after: int = 0) -> list[Change]:
    """The project's changes after `after`, once every committed one has its id."""
    await number_all_changes(database)
    async with database.sessionmaker() as session:
        rows = await session.execute(
            select(Change)
            .join(Project, Project.id == Change.project_id)
            .where(Project.app_id == project.app_id, Change.id > after)
            .order_by(Change.id)
        )
        return list(rows.scalars())


async def project_by_app_id_row(database, project) -> int:
    async with database.sessionmaker() as session:
        found = await session.execute(select(Project.id).where(Project.app_id == project.app_id))
        return int(found.scalar_one())


async def last_id(database, project) -> int:
    found = await changes(database, project)
    if not found:
        return 0
    last = found[-1].id
    assert last is not None  # changes() returns numbered changes only
    return last


async def test_a_new_contact_with_a_company_is_created_linked_and_staged(widget, project, database):
    user = unique("u")
    answer = await widget.identify(
        project, user_id=user, email=unique_email(), signed=True,
        company={"id": "acme", "name": "Acme", "stage": "Trial", "metadata": {"arr": 5}},
    )  # fmt: skip
    assert answer.status_code == 200
    found = await changes(database, project)
    assert [c.type for c in found] == [
        "contact.created", "contact.company_linked", "company.created", "company.stage_changed"
    ]  # fmt: skip
    assert [c.id for c in found] == [1, 2, 3, 4]
    created = found[0].data
    assert created["id"] == answer.json()["contact"]["id"] and created["version"] == 1
    assert created["user_id"] == user and created["verified"] is True
    assert found[1].data == {"contact_id": created["id"], "company_id": "acme"}
    assert found[2].data["name"] == "Acme" and found[2].data["metadata"] == {"arr": 5}
    stage = found[3].data
    assert (stage["stage"], stage["previous"], stage["source"], stage["mode"]) == (
        "Trial", None, "widget", "overwrite"
    )  # fmt: skip


async def test_a_returning_user_without_news_writes_no_change(widget, project, database):
    fields = {"user_id": unique("u"), "metadata": {"plan": "pro"}, "company": {"id": "acme"}}
    await widget.identify(project, **fields)
    before = await last_id(database, project)
    again = await widget.identify(project, **fields)
    assert again.status_code == 200
    assert await changes(database, project, before) == []


async def test_an_update_names_what_changed_and_bumps_the_version(widget, project, database):
    visitor, user = unique("v"), unique("u")
    await widget.identify(project, visitor_id=visitor, user_id=user, metadata={"plan": "pro"})
    before = await last_id(database, project)
    await widget.identify(
        project, visitor_id=visitor, user_id=user, name="Ann", metadata={"plan": "team", "x": None}
    )
    await widget.set_properties(project, visitor, {"seats": 3})
    [renamed, seats] = await changes(database, project, before)
    assert renamed.type == "contact.updated" and renamed.data["version"] == 2
    assert renamed.data["changed"] == {
        "name": {"old": None, "new": "Ann"},
        "metadata.plan": {"old": "pro", "new": "team"},
    }
    assert seats.data["version"] == 3
    assert seats.data["changed"] == {"metadata.seats": {"old": None, "new": 3}}


async def test_a_refused_request_writes_no_change(widget, project, database):
    user = unique("u")
    await widget.identify(project, user_id=user, signed=True)
    before = await last_id(database, project)
    refused = await widget.identify(project, user_id=user, name="Mallory")  # unsigned
    assert refused.status_code == 403
    assert await changes(database, project, before) == []


async def test_track_deal_stage_and_chat_each_leave_their_change(widget, project, team, database):
    visitor = unique("v")
    token = (
        await widget.identify(
            project, visitor_id=visitor, user_id=unique("u"), company={"id": "c1"}
        )
    ).json()["session_token"]
    before = await last_id(database, project)
    await widget.call("track", project, visitor, token, event="paid", event_id="e1")
    await widget.call("track", project, visitor, token, event="paid", event_id="e1")  # repeat
    await widget.call("set-stage", project, visitor, token, stage="Customer")
    await widget.call("set-stage", project, visitor, token, stage="Customer")  # unchanged
    await widget.call("set-deal", project, visitor, token, deal={"id": "d1", "amount": 10})
    posted = await widget.call("messages", project, visitor, token, body="hello")
    conversation_id = posted.json()["conversation"]["id"]
    await team.post(f"/conversations/{conversation_id}/messages", {"body": "hi there"})
    found = await changes(database, project, before)
    assert [c.type for c in found] == [
        "event.tracked", "company.stage_changed", "deal.updated", "conversation.created",
        "message.created", "message.created",
    ]  # fmt: skip
    assert found[0].data["name"] == "paid" and found[0].data["event_id"] == "e1"
    assert found[1].data["stage"] == "Customer" and found[1].data["version"] == 2
    assert found[2].data["deal"]["id"] == "d1" and found[2].data["created"] is True
    assert [found[4].data["author"], found[5].data["author"]] == ["visitor", "agent"]


async def test_ids_grow_without_gaps_under_concurrent_writers(widget, project, database):
    await asyncio.gather(*(widget.identify(project, user_id=unique("u")) for _ in range(20)))
    ids = [c.id for c in await changes(database, project)]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) == 20


async def test_postgres_writers_do_not_wait_on_each_other_and_ids_follow_the_end_of_writes(
    widget, project, database
):
    """A transaction still open with a change does not hold back another writer of the same
    project, and its change is numbered only once it has ended: a reader that has passed an id
    never finds a change below it later."""
    if not database.is_postgres:
        pytest.skip("SQLite runs one writer at a time; ids are given in the writing transaction")
    found = await project_by_app_id_row(database, project)
    before = await last_id(database, project)
    async with database.engine.connect() as slow:
        await slow.begin()
        await write_changes(
            Tx(slow, "postgresql", database.projects),
            [PendingChange(found, ChangeType.CONTACT_UPDATED, {"slow": True})],
        )
        # Another writer of the same project commits while the first is still open.
        answer = await asyncio.wait_for(widget.identify(project, user_id=unique("u")), 30)
        assert answer.status_code == 200
        await database.number_changes()
        async with database.sessionmaker() as session:
            numbered = (
                (
                    await session.execute(
                        select(Change.id).where(Change.project_id == found, Change.id > before)
                    )
                )
                .scalars()
                .all()
            )
        assert numbered == []  # the open transaction is older: nothing after it is numbered
        await slow.commit()
    after = await changes(database, project, before)
    assert [c.type for c in after] == ["contact.updated", "contact.created"]
    assert [c.id for c in after] == [before + 1, before + 2]


async def test_one_transactions_changes_of_two_projects_take_each_projects_next_ids(
    project, database
):
    """A transaction's few changes (numbered by their own insert on SQLite) and an import
    chunk's many: each project's ids follow on, in the order recorded, and its counter
    ends at its last id."""
    other = await make_project(database)
    first = await project_by_app_id_row(database, project)
    second = await project_by_app_id_row(database, other)
    before = (await last_id(database, project), await last_id(database, other))
    few = [first, second, first, first, second]
    many = [first, second] * MANY

    async def write(tx: Tx, projects: list[int]) -> None:
        tx.changes.extend(
            PendingChange(p, ChangeType.CONTACT_UPDATED, {"n": n}) for n, p in enumerate(projects)
        )

    for projects in (few, many):
        await database.run(lambda tx, projects=projects: write(tx, projects))
    for app, row, last in ((project, first, before[0]), (other, second, before[1])):
        found = await changes(database, app, last)
        recorded = [n for n, p in enumerate(few) if p == row] + [
            n for n, p in enumerate(many) if p == row
        ]
        assert [c.id for c in found] == list(range(last + 1, last + 1 + len(recorded)))
        assert [c.data["n"] for c in found] == recorded
        async with database.sessionmaker() as session:
            counter = await session.scalar(select(Project.last_change_id).where(Project.id == row))
        assert counter == found[-1].id


async def test_a_subscription_starts_after_every_change_committed_before_it(project, database):
    """A stream opened without Last-Event-ID carries only what is committed after it opens:
    a change committed just before (on PostgreSQL still without its id, or not yet read by
    the process's reader for the project's other streams) never comes later as live."""
    row = await project_by_app_id_row(database, project)

    async def commit_one(tx: Tx) -> None:
        tx.changes.append(PendingChange(row, ChangeType.CONTACT_UPDATED, {"before": True}))

    feed = ChangeFeed(database, poll_seconds=3600, retention=timedelta(days=1))
    try:
        await database.run(commit_one)
        async with feed.subscribe(row) as first:
            assert first.cursor == await last_id(database, project)
            await database.run(commit_one)
            async with feed.subscribe(row) as second:
                assert second.cursor == await last_id(database, project) == first.cursor + 1
    finally:
        await feed.stop()

"""Concurrent identifies for one person, through a real server on a real database, never
create duplicates (README "Identify": "in one race-safe transaction")."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.factories import make_project, unique, unique_email
from tests.servers import running_server

pytestmark = pytest.mark.server

CONCURRENCY = 40


@pytest.fixture(scope="module")
def server(database_url: str, artifacts_dir) -> Iterator[str]:
    with running_server(database_url, log=artifacts_dir / "server-concurrency.log") as url:
        yield url


async def _identify_all(server: str, bodies: list[dict[str, Any]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as http:
        return await asyncio.gather(*(http.post("/api/widget/identify", json=b) for b in bodies))


async def test_40_concurrent_identifies_for_one_new_email_create_one_contact(
    server, database, inspect
):
    project = await make_project(database)
    email = unique_email("race")
    bodies = [
        {
            "app_id": project.app_id,
            "visitor_id": unique("v"),
            "email": email,
            "metadata": {f"k{i}": i},
        }
        for i in range(CONCURRENCY)
    ]
    responses = await _identify_all(server, bodies)
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, responses[0].text
    assert len({r.json()["contact"]["id"] for r in responses}) == 1
    [contact] = await inspect.contacts(project.app_id)
    assert contact.email_normalized == email
    # No lost update: every request's metadata key is there.
    assert contact.metadata_ == {f"k{i}": i for i in range(CONCURRENCY)}


async def test_concurrent_identifies_for_one_user_and_company_create_one_of_each(
    server, database, inspect
):
    project = await make_project(database)
    email = unique_email("race")
    bodies = [
        {
            "app_id": project.app_id,
            "visitor_id": unique("v"),
            "user_id": "u-race",
            "email": email,
            "company": {"id": "acme", "metadata": {f"c{i}": i}},
            "company_ids": ["beta", "gamma"],
        }
        for i in range(CONCURRENCY)
    ]
    responses = await _identify_all(server, bodies)
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, responses[0].text
    assert len(await inspect.contacts(project.app_id)) == 1
    companies = await inspect.companies(project.app_id)
    assert sorted(c.external_id for c in companies) == ["acme", "beta", "gamma"]
    acme = next(c for c in companies if c.external_id == "acme")
    assert acme.metadata_ == {f"c{i}": i for i in range(CONCURRENCY)}
    assert len(await inspect.links(project.app_id)) == 3


async def test_concurrent_repeats_of_one_event_id_store_one_event(server, database, inspect):
    project = await make_project(database)
    visitor = unique("v")
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as http:
        identified = await http.post(
            "/api/widget/identify",
            json={"app_id": project.app_id, "visitor_id": visitor, "user_id": "u1"},
        )
        assert identified.status_code == 200
        body = {
            "app_id": project.app_id,
            "visitor_id": visitor,
            "event": "checkout-completed",
            "event_id": "evt-once",
        }
        responses = await asyncio.gather(
            *(http.post("/api/widget/track", json=body) for _ in range(CONCURRENCY))
        )
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, responses[0].text
    assert sorted(r.json()["duplicate"] for r in responses) == [False] + [True] * (CONCURRENCY - 1)
    assert len({r.json()["event"]["id"] for r in responses}) == 1
    assert len(await inspect.events(project.app_id, "checkout-completed")) == 1


async def test_concurrent_writes_of_one_deal_create_one_deal(server, database, inspect):
    project = await make_project(database)
    visitors = [unique("v") for _ in range(CONCURRENCY)]
    limits = httpx.Limits(max_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as http:
        for visitor in visitors[:2]:
            await http.post(
                "/api/widget/identify",
                json={
                    "app_id": project.app_id,
                    "visitor_id": visitor,
                    "user_id": visitor,
                    "company": {"id": "acme"},
                },
            )
        responses = await asyncio.gather(
            *(
                http.post(
                    "/api/widget/set-deal",
                    json={
                        "app_id": project.app_id,
                        "visitor_id": visitors[i % 2],
                        "deal": {"id": "big", "metadata": {f"k{i}": i}},
                    },
                )
                for i in range(CONCURRENCY)
            )
        )
    assert [r.status_code for r in responses] == [200] * CONCURRENCY, responses[0].text
    [deal] = await inspect.deals(project.app_id)
    assert deal.metadata_ == {f"k{i}": i for i in range(CONCURRENCY)}


async def test_identifies_racing_an_erase_with_suppression_never_bring_the_person_back(
    server, database, database_url, inspect
):
    """Erase takes the person's advisory locks, as identify does: an identify that passed its
    suppression check before the erase committed cannot re-create the person after it."""
    from tests.factories import make_token

    if not database_url.startswith("postgresql"):
        pytest.skip("SQLite runs one writer at a time: an erase and an identify cannot overlap")
    project = await make_project(database)
    token = await make_token(database, project)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=server, limits=limits, timeout=60) as http:
        for _ in range(8):
            user_id = unique("u")
            body = {"app_id": project.app_id, "user_id": user_id}
            made = await http.post("/api/widget/identify", json={**body, "visitor_id": "v0"})
            contact_id = made.json()["contact"]["id"]
            erase = http.delete(
                f"/api/projects/{project.app_id}/contacts/{contact_id}",
                params={"suppress": "true"},
                headers={"Authorization": f"Bearer {token}"},
            )
            identifies = [
                http.post("/api/widget/identify", json={**body, "visitor_id": unique("v")})
                for _ in range(CONCURRENCY // 2)
            ]
            answers = await asyncio.gather(erase, *identifies)
            assert answers[0].status_code == 200, answers[0].text
            assert {a.status_code for a in answers[1:]} <= {200, 403}
            late = await http.post("/api/widget/identify", json={**body, "visitor_id": "late"})
            assert late.status_code == 403 and late.json()["error"]["code"] == "suppressed"
            held = [c for c in await inspect.contacts(project.app_id) if c.user_id == user_id]
            assert held == [], f"{user_id} came back after its erasure"


async def test_an_identify_reads_a_suppression_made_by_another_process(widget, project, database):
    """PostgreSQL: a project's first suppression, made where this process's cache cannot
    see it (another server's erase), still refuses a new identify of that person: the key is
    read after the identity's locks (with the visitor's upsert), not taken from the cache."""
    if not database.is_postgres:
        pytest.skip("SQLite's one writer began after any erase committed, whose process it is")
    from sqlalchemy import text

    from hal.domain.privacy import new_suppression_key, suppression_hash

    known = await widget.identify(project, visitor_id=unique("v"), user_id=unique("u"))
    assert known.status_code == 200, known.text  # the project is cached, with no key
    user_id, key = unique("u"), new_suppression_key()
    async with database.engine.begin() as connection:  # as another process's erase does
        project_id = (
            await connection.execute(
                text("UPDATE projects SET suppression_key = :key WHERE app_id = :app RETURNING id"),
                {"key": key, "app": project.app_id},
            )
        ).scalar_one()
        await connection.execute(
            text(
                "INSERT INTO suppressions (project_id, user_id_hash, created_at) "
                "VALUES (:project, :hash, now())"
            ),
            {"project": project_id, "hash": suppression_hash(key, "user_id", user_id)},
        )
    refused = await widget.identify(project, visitor_id=unique("v"), user_id=user_id)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "suppressed"


async def test_an_identify_waiting_on_its_visitor_finds_the_contact_bound_meanwhile(
    widget, project, database
):
    """PostgreSQL reads identify's visitor and contacts in one statement, whose snapshot is
    taken before it waits for a visitor another transaction holds. When that transaction
    made a verified contact and bound the visitor to it, the waiting identify still finds
    that contact (read on its own): an unsigned call without the visitor's session is
    refused, as it is once the other transaction has committed."""
    if not database.is_postgres:
        pytest.skip("SQLite runs one writer at a time: an identify cannot wait on a visitor")
    from sqlalchemy import text

    from hal.db.engine import Tx
    from hal.db.store.people import insert_contact

    visitor = unique("v")
    assert (await widget.set_properties(project, visitor, {"plan": "free"})).status_code == 200
    async with database.engine.connect() as other:
        await other.begin()
        tx = Tx(other, "postgresql", database.projects)
        config = await tx.project(project.app_id)
        bob = await insert_contact(
            tx, project_id=config.id, values={"user_id": unique("bob"), "verified": True}
        )
        await other.execute(
            text("UPDATE visitors SET contact_id = :bob, verified = true "
                 "WHERE project_id = :project AND visitor_key = :visitor"),
            {"bob": bob, "project": config.id, "visitor": visitor},
        )  # fmt: skip
        waiting = asyncio.create_task(
            widget.identify(project, visitor_id=visitor, user_id=unique("alice"))
        )
        async with database.engine.connect() as watch:
            for _ in range(200):  # until the identify waits for the visitor's lock
                waits = await watch.scalar(
                    text("SELECT count(*) FROM pg_stat_activity WHERE datname = "
                         "current_database() AND wait_event_type = 'Lock'")
                )  # fmt: skip
                if waits:
                    break
                await asyncio.sleep(0.05)
            assert waits, "the identify never waited for the visitor"
        await other.commit()
    answer = await asyncio.wait_for(waiting, 30)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "session_token_required"

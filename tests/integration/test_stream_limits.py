"""Streams are bounded (README "Live stream"): per visitor (5), per client address
(HAL_STREAMS_PER_CLIENT) and per process (HAL_STREAMS_PER_PROCESS), a closed stream giving its
place back; and a visitor's replay from far back reads that visitor's changes, not the
project's. Real servers and real SSE clients, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from contextlib import AsyncExitStack, asynccontextmanager, contextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy import select

from hal.app import create_app
from hal.config import Settings
from hal.db.engine import Database
from hal.db.models import Project
from tests.factories import make_project, make_token, number_all_changes, unique
from tests.servers import free_port, running_server
from tests.sse import Event, events

pytestmark = pytest.mark.server

WAIT = 10  # seconds (a bound, not a measurement)


@asynccontextmanager
async def held_stream(
    http: httpx.AsyncClient, path: str, **request: Any
) -> AsyncIterator[httpx.Response]:
    """An open stream (or its refusal, read in full), held until the block ends."""
    async with http.stream("GET", path, **request) as response:
        if response.status_code != 200:
            await response.aread()
        yield response


def refused_for_too_many(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code != 200, "the stream opened: nothing capped it"
    assert answer.status_code == status, (answer.status_code, answer.text)
    assert int(answer.headers["Retry-After"]) > 0
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    return error


async def anonymous_visitor(http: httpx.AsyncClient, app_id: str, says: str = "hello") -> str:
    """A new visitor that has written a message (so its stream has a conversation)."""
    visitor = unique("v")
    said = await http.post(
        "/api/widget/messages", json={"app_id": app_id, "visitor_id": visitor, "body": says}
    )
    assert said.status_code == 200, said.text
    return visitor


async def test_a_sixth_stream_of_one_visitor_is_refused(database_url, database):
    project = await make_project(database)
    with running_server(database_url) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http, AsyncExitStack() as held:
            visitor = await anonymous_visitor(http, project.app_id)
            query = {"app_id": project.app_id, "visitor_id": visitor}
            for _ in range(5):
                opened = await held.enter_async_context(
                    held_stream(http, "/api/widget/stream", params=query)
                )
                assert opened.status_code == 200
            sixth = await held.enter_async_context(
                held_stream(http, "/api/widget/stream", params=query)
            )
            error = refused_for_too_many(sixth, 429, "too_many_streams")
            assert error["field"] == "visitor_id"
            # Another visitor behind the same address still has its own five.
            other = {
                "app_id": project.app_id,
                "visitor_id": await anonymous_visitor(http, project.app_id),
            }
            another = await held.enter_async_context(
                held_stream(http, "/api/widget/stream", params=other)
            )
            assert another.status_code == 200


async def test_streams_per_client_address_are_capped_and_a_closed_one_frees_its_place(
    database_url, database
):
    project = await make_project(database)
    token = await make_token(database, project)
    team = {"headers": {"Authorization": f"Bearer {token}"}}
    path = f"/api/projects/{project.app_id}/stream"
    with running_server(database_url, env={"HAL_STREAMS_PER_CLIENT": "3"}) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http, AsyncExitStack() as held:
            visitor = await anonymous_visitor(http, project.app_id)
            widget = {"params": {"app_id": project.app_id, "visitor_id": visitor}}
            first = held_stream(http, path, **team)
            assert (await first.__aenter__()).status_code == 200
            for _ in range(2):
                opened = await held.enter_async_context(held_stream(http, path, **team))
                assert opened.status_code == 200
            fourth = await held.enter_async_context(held_stream(http, path, **team))
            refused_for_too_many(fourth, 429, "too_many_streams")
            # Every stream of the address counts, the widget's too.
            its_widget = await held.enter_async_context(
                held_stream(http, "/api/widget/stream", **widget)
            )
            refused_for_too_many(its_widget, 429, "too_many_streams")

            await first.__aexit__(None, None, None)  # the client closes one
            async with asyncio.timeout(WAIT):
                while True:
                    async with held_stream(http, path, **team) as again:
                        if again.status_code == 200:
                            break
                        refused_for_too_many(again, 429, "too_many_streams")
                    await asyncio.sleep(0.1)


async def test_streams_past_the_process_cap_are_refused_with_503(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    team = {"headers": {"Authorization": f"Bearer {token}"}}
    path = f"/api/projects/{project.app_id}/stream"
    with running_server(database_url, env={"HAL_STREAMS_PER_PROCESS": "2"}) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http, AsyncExitStack() as held:
            for _ in range(2):
                opened = await held.enter_async_context(held_stream(http, path, **team))
                assert opened.status_code == 200
            third = await held.enter_async_context(held_stream(http, path, **team))
            refused_for_too_many(third, 503, "streams_full")


# The replay's cost: counted on this process's engine, so the server runs in this process.


@asynccontextmanager
async def serving(database: Database) -> AsyncIterator[str]:
    """The app on a real loopback HTTP server in this process (its statements are countable)."""
    app = create_app(Settings(database_url=database.url), database=database)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on")
    )
    task = asyncio.create_task(server.serve())
    try:
        async with asyncio.timeout(WAIT):
            while not server.started:
                await asyncio.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@contextmanager
def statements_run(database: Database) -> Iterator[list[str]]:
    """The SQL text of every statement run on the engine meanwhile."""
    seen: list[str] = []
    with database.observe(seen.append):
        yield seen


async def others_changes(database: Database, app_id: str, count: int) -> None:
    """`count` chat changes of other people's conversations, written in one transaction."""

    async def write(tx: Any) -> None:
        project_id = (
            await tx.execute(select(Project.id).where(Project.app_id == app_id))
        ).scalar_one()
        for n in range(count):
            someone = 10**12 + n
            data = {"id": n, "author": "agent", "body": "not yours", "conversation_id": someone,
                    "contact_id": someone}  # fmt: skip
            tx.record(project_id, "message.created", data)

    await database.run(write)


async def test_a_visitors_replay_reads_its_own_changes_not_the_projects(database_url, database):
    project = await make_project(database)
    others = 2000  # four pages of the log, were they read
    async with (
        serving(database) as url,
        httpx.AsyncClient(base_url=url, timeout=httpx.Timeout(WAIT)) as http,
    ):
        await others_changes(database, project.app_id, others // 2)
        visitor = await anonymous_visitor(http, project.app_id, says="first")
        said = await http.post(
            "/api/widget/messages",
            json={"app_id": project.app_id, "visitor_id": visitor, "body": "second"},
        )
        assert said.status_code == 200, said.text
        await others_changes(database, project.app_id, others // 2)
        await number_all_changes(database)

        query = {"app_id": project.app_id, "visitor_id": visitor, "last_event_id": "0"}
        replayed: list[Event] = []
        with statements_run(database) as statements:
            async with http.stream("GET", "/api/widget/stream", params=query) as response:
                assert response.status_code == 200
                async with asyncio.timeout(WAIT):
                    async for event in events(response):
                        replayed.append(event)
                        if len(replayed) == 2:
                            break
    assert [e.json()["data"]["body"] for e in replayed] == ["first", "second"]
    # Pages of the log read for the replay (those bounded by the stream's start): one page
    # holds this visitor's changes; the others' 2,000 would take four.
    pages = [s for s in statements if s.lstrip().startswith("SELECT") and "changes.id <=" in s]
    assert len(pages) == 1, pages

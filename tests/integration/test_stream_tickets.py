"""Stream tickets (README "Change log and live stream"): a browser's EventSource sends no
headers, so an API token asks `POST /stream-tickets` for a ticket that opens the project's
stream once, as `?ticket=`, within 60 seconds. Tickets are kept in the database, hashed, so any
server process can take them."""

from __future__ import annotations

import asyncio
import hashlib
from datetime import datetime, timedelta

import httpx
import pytest
from sqlalchemy import select, update

from hal.db.models import StreamTicket
from hal.db.types import utcnow
from hal.services.projects import revoke_api_token
from tests.factories import make_project, make_token, unique
from tests.servers import running_server
from tests.sse import events

WAIT = 10  # seconds to wait for an event (a bound, not a measurement)


async def ask_ticket(http: httpx.AsyncClient, app_id: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await http.post(f"/api/projects/{app_id}/stream-tickets", headers=headers)


async def ticket_for(http: httpx.AsyncClient, app_id: str, token: str) -> str:
    answer = await ask_ticket(http, app_id, token)
    assert answer.status_code == 201, answer.text
    ticket: str = answer.json()["ticket"]
    return ticket


async def open_with(http: httpx.AsyncClient, app_id: str, ticket: str) -> httpx.Response:
    """A stream request that is refused (a granted one would never end here)."""
    return await http.get(f"/api/projects/{app_id}/stream", params={"ticket": ticket})


def refused(answer: httpx.Response, status: int, code: str) -> None:
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/json"
    assert answer.json()["error"]["code"] == code


async def expire(database, ticket: str) -> None:
    """Move a ticket's end into the past, as 60 seconds of waiting would."""
    digest = hashlib.sha256(ticket.encode()).hexdigest()
    past = utcnow() - timedelta(seconds=1)
    await database.transaction(
        lambda s: s.execute(
            update(StreamTicket).where(StreamTicket.ticket_hash == digest).values(expires_at=past)
        )
    )


async def test_a_new_ticket_says_when_it_expires(widget, team):
    asked_at = utcnow()
    answer = await ask_ticket(widget.http, team.project.app_id, team.token)
    assert answer.status_code == 201, answer.text
    document = answer.json()
    assert document["expires_in"] == 60
    expires_at = datetime.fromisoformat(document["expires_at"])
    assert timedelta(seconds=59) < expires_at - asked_at < timedelta(seconds=61)
    assert len(document["ticket"]) >= 32


async def test_asking_for_a_ticket_needs_a_token_of_the_project(widget, team, new_project):
    other = await new_project()
    refused(await ask_ticket(widget.http, other.app_id, None), 401, "missing_token")
    refused(await ask_ticket(widget.http, other.app_id, "hal_made_up"), 401, "invalid_token")
    refused(await ask_ticket(widget.http, other.app_id, team.token), 403, "token_not_for_project")


async def test_an_admin_token_may_ask_for_a_ticket_too(widget, database, project):
    admin = await make_token(database, project, admin=True)
    assert (await ask_ticket(widget.http, project.app_id, admin)).status_code == 201


async def test_a_made_up_empty_or_overlong_ticket_is_401(widget, project):
    for ticket in ("made-up", "", "x" * 5000):
        refused(await open_with(widget.http, project.app_id, ticket), 401, "invalid_ticket")


async def test_an_expired_ticket_is_401(widget, database, team):
    ticket = await ticket_for(widget.http, team.project.app_id, team.token)
    await expire(database, ticket)
    refused(await open_with(widget.http, team.project.app_id, ticket), 401, "invalid_ticket")


async def test_a_ticket_of_project_a_does_not_open_project_bs_stream_and_is_spent(
    widget, team, new_project
):
    other = await new_project()
    ticket = await ticket_for(widget.http, team.project.app_id, team.token)
    refused(await open_with(widget.http, other.app_id, ticket), 403, "ticket_not_for_project")
    # Spent by that use: it opens its own project's stream no more.
    refused(await open_with(widget.http, team.project.app_id, ticket), 401, "invalid_ticket")


async def test_a_ticket_of_a_revoked_token_opens_nothing(widget, database, team):
    ticket = await ticket_for(widget.http, team.project.app_id, team.token)
    await database.transaction(
        lambda s: revoke_api_token(session=s, app_id=team.project.app_id, token=team.token)
    )
    refused(await open_with(widget.http, team.project.app_id, ticket), 401, "invalid_ticket")


async def test_only_the_tickets_hash_is_kept(widget, database, team):
    ticket = await ticket_for(widget.http, team.project.app_id, team.token)
    rows = await database.transaction(
        lambda s: s.execute(select(StreamTicket.ticket_hash, StreamTicket.token_id))
    )
    stored = [tuple(row) for row in rows]
    assert all(ticket not in str(value) for row in stored for value in row)
    assert hashlib.sha256(ticket.encode()).hexdigest() in [digest for digest, _ in stored]


async def test_expired_tickets_are_dropped_when_a_new_one_is_issued(widget, database, team):
    old = await ticket_for(widget.http, team.project.app_id, team.token)
    await expire(database, old)
    await ticket_for(widget.http, team.project.app_id, team.token)
    expired = await database.transaction(
        lambda s: s.scalar(select(StreamTicket).where(StreamTicket.expires_at <= utcnow()))
    )
    assert expired is None


# A ticket that is granted opens a stream that never ends: real servers, real SSE clients.


async def next_event_named(response: httpx.Response, name: str):
    async with asyncio.timeout(WAIT):
        async for event in events(response):
            if event.event == name:
                return event
    raise AssertionError(f"the stream ended before a {name} event")


async def identify(url: str, app_id: str, user_id: str) -> None:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        body = {"app_id": app_id, "visitor_id": unique("v"), "user_id": user_id}
        answer = await http.post(f"{url}/api/widget/identify", json=body)
        assert answer.status_code == 200, answer.text


@pytest.mark.server
async def test_a_ticket_opens_the_stream_once_and_it_carries_the_projects_changes(
    database_url, database
):
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as url:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
            ticket = await ticket_for(http, project.app_id, token)
            path = f"/api/projects/{project.app_id}/stream"
            async with http.stream("GET", path, params={"ticket": ticket}) as response:
                assert response.status_code == 200, await response.aread()
                assert response.headers["content-type"].startswith("text/event-stream")
                user = unique("u")
                waiting = asyncio.create_task(next_event_named(response, "contact.created"))
                await asyncio.sleep(0.2)
                await identify(url, project.app_id, user)
                assert (await waiting).json()["data"]["user_id"] == user
            refused(await open_with(http, project.app_id, ticket), 401, "invalid_ticket")


@pytest.mark.server
async def test_a_ticket_from_one_server_opens_the_stream_on_another(database_url, database):
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share PostgreSQL, not SQLite")
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as first, running_server(database_url) as second:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=first, timeout=timeout) as on_first:
            ticket = await ticket_for(on_first, project.app_id, token)
        async with httpx.AsyncClient(base_url=second, timeout=timeout) as on_second:
            path = f"/api/projects/{project.app_id}/stream"
            async with on_second.stream("GET", path, params={"ticket": ticket}) as response:
                assert response.status_code == 200, await response.aread()
                user = unique("u")
                waiting = asyncio.create_task(next_event_named(response, "contact.created"))
                await asyncio.sleep(0.2)
                await identify(first, project.app_id, user)
                assert (await waiting).json()["data"]["user_id"] == user
        async with httpx.AsyncClient(base_url=first, timeout=timeout) as on_first:
            refused(await open_with(on_first, project.app_id, ticket), 401, "invalid_ticket")

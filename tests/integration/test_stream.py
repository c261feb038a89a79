"""README "Change log and live stream": real `hal serve` processes, real SSE clients, on SQLite and
PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta

import httpx
import pytest

from hal.services.agents import create_agent
from hal.services.change_feed import purge_changes
from tests.factories import make_project, make_token, number_all_changes, unique, unique_email
from tests.servers import running_server
from tests.sse import Event, events

pytestmark = pytest.mark.server

WAIT = 10  # seconds a test waits for an event before failing (a bound, not a measurement)


@asynccontextmanager
async def stream(url: str, app_id: str, token: str, **headers: str) -> AsyncIterator[
    AsyncIterator[Event]
]:  # fmt: skip
    async with httpx.AsyncClient(timeout=httpx.Timeout(WAIT, read=WAIT)) as http:
        request_headers = {"Authorization": f"Bearer {token}", **headers}
        async with http.stream(
            "GET", f"{url}/api/projects/{app_id}/stream", headers=request_headers
        ) as response:
            assert response.status_code == 200, await response.aread()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield events(response)


async def next_events(source: AsyncIterator[Event], count: int) -> list[Event]:
    received = []
    async with asyncio.timeout(WAIT):
        async for event in source:
            received.append(event)
            if len(received) == count:
                return received
    return received


async def identify(url: str, app_id: str, **fields) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        body = {"app_id": app_id, "visitor_id": unique("v"), **fields}
        return await http.post(f"{url}/api/widget/identify", json=body)


async def test_a_change_reaches_an_open_stream(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as url:
        async with stream(url, project.app_id, token) as source:
            user = unique("u")
            waiting = asyncio.create_task(next_events(source, 1))
            await asyncio.sleep(0.2)
            assert (await identify(url, project.app_id, user_id=user)).status_code == 200
            [created] = await waiting
    assert created.event == "contact.created"
    document = created.json()
    assert created.id == str(document["id"])
    assert document["type"] == "contact.created" and document["data"]["user_id"] == user
    assert document["timestamp"].endswith("Z")  # as REST and webhooks write instants


async def test_a_reconnect_replays_what_it_missed_in_order_then_goes_live(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as url:
        for _ in range(3):
            await identify(url, project.app_id, user_id=unique("u"))  # ids 1, 2, 3
        async with stream(url, project.app_id, token, **{"Last-Event-ID": "1"}) as source:
            replayed = await next_events(source, 2)
            assert [e.id for e in replayed] == ["2", "3"]
            waiting = asyncio.create_task(next_events(source, 1))
            await identify(url, project.app_id, user_id=unique("u"))
            assert [e.id for e in await waiting] == ["4"]


async def test_an_id_older_than_what_is_kept_gets_resync_first(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as url:
        await identify(url, project.app_id, user_id=unique("u"))
        await identify(url, project.app_id, user_id=unique("u"))
        await number_all_changes(database)
        await purge_changes(database, timedelta(0))
        await identify(url, project.app_id, user_id=unique("u"))  # id 3 is kept
        async with stream(url, project.app_id, token, **{"Last-Event-ID": "1"}) as source:
            resync, kept = await next_events(source, 2)
    assert resync.event == "resync"
    assert kept.id == "3"


async def test_a_token_never_opens_another_projects_stream(database_url, database):
    project, other = await make_project(database), await make_project(database)
    token = await make_token(database, other)
    with running_server(database_url) as url:
        async with httpx.AsyncClient(timeout=WAIT) as http:
            refused = await http.get(
                f"{url}/api/projects/{project.app_id}/stream",
                headers={"Authorization": f"Bearer {token}"},
            )
            missing = await http.get(f"{url}/api/projects/{project.app_id}/stream")
    assert refused.status_code == 403
    assert missing.status_code == 401


async def test_a_change_on_one_server_reaches_a_stream_on_another(database_url, database):
    if not database_url.startswith("postgresql"):
        pytest.skip("several server processes share PostgreSQL, not SQLite")
    project = await make_project(database)
    token = await make_token(database, project)
    with running_server(database_url) as first, running_server(database_url) as second:
        async with stream(first, project.app_id, token) as source:
            waiting = asyncio.create_task(next_events(source, 1))
            await asyncio.sleep(0.2)
            assert (await identify(second, project.app_id, user_id="elsewhere")).status_code == 200
            [created] = await waiting
    assert created.json()["data"]["user_id"] == "elsewhere"


async def widget_call(url, route, body, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(timeout=WAIT) as http:
        return await http.post(f"{url}/api/widget/{route}", json=body, headers=headers)


async def team_reply(url, app_id, token, conversation_id, body):
    async with httpx.AsyncClient(timeout=WAIT) as http:
        return await http.post(
            f"{url}/api/projects/{app_id}/conversations/{conversation_id}/messages",
            json={"body": body},
            headers={"Authorization": f"Bearer {token}"},
        )


async def test_a_visitors_stream_carries_its_replies_and_never_anothers(database_url, database):
    project = await make_project(database)
    team_token = await make_token(database, project)
    with running_server(database_url) as url:
        conversations, tokens = {}, {}
        for name in ("alice", "bob"):
            visitor = unique(name)
            signed = await widget_call(url, "identify", {
                "app_id": project.app_id, "visitor_id": visitor, "user_id": visitor,
                "user_hash": project.hash(visitor)})  # fmt: skip
            tokens[name] = (visitor, signed.json()["session_token"])
            posted = await widget_call(
                url, "messages",
                {"app_id": project.app_id, "visitor_id": visitor, "body": f"{name} asks"},
                tokens[name][1],
            )  # fmt: skip
            conversations[name] = posted.json()["conversation"]["id"]
        alice, alice_token = tokens["alice"]
        query = {"app_id": project.app_id, "visitor_id": alice, "session_token": alice_token}
        async with httpx.AsyncClient(timeout=httpx.Timeout(WAIT, read=WAIT)) as http:
            refused = await http.get(
                f"{url}/api/widget/stream", params={**query, "session_token": "forged"}
            )
            assert refused.status_code == 401
            async with http.stream("GET", f"{url}/api/widget/stream", params=query) as response:
                assert response.status_code == 200
                waiting = asyncio.create_task(next_events(events(response), 1))
                await asyncio.sleep(0.2)
                await team_reply(url, project.app_id, team_token, conversations["bob"], "to bob")
                await team_reply(
                    url, project.app_id, team_token, conversations["alice"], "to alice"
                )
                [reply] = await waiting
    assert reply.event == "message.created"
    assert reply.json()["data"]["body"] == "to alice"
    assert reply.json()["data"]["author"] == "agent"


# README "What round 2's review found": a Last-Event-ID that is not a plain ASCII number the
# database can hold is a 4xx naming the field, never a 500, on every stream route, before any
# credential or project is looked at.
NOT_CHANGE_IDS: list[bytes] = [  # header values, as the client's bytes
    b"\xb2",  # "²" once decoded: str.isdigit() says yes, int() refuses
    "\u0663".encode(),  # an Arabic-Indic three
    b"9" * 5000,
    b"9223372036854775808",  # 2**63: past what the database holds
    b"-1",
    b"+1",
    b"1.5",
    b"1e3",
    b"0x10",
    b"1_000",
]
NOT_CHANGE_IDS_IN_QUERY = ["\u00b2", "\u0663", " 1 ", "9" * 5000, "-1", "+1", "1_000"]


def refused_as_last_event_id(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, (answer.status_code, answer.text[:200])
    error = answer.json()["error"]
    assert error["code"] == "invalid_last_event_id"
    assert error["field"] == field


async def test_a_last_event_id_that_is_no_change_id_is_refused_never_a_500(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    email = unique_email("agent")
    await database.transaction(
        lambda s: create_agent(session=s, app_id=project.app_id, email=email, password="long pw 1")
    )
    team = {"Authorization": f"Bearer {token}"}
    team_bytes = {b"Authorization": f"Bearer {token}".encode()}
    unknown_app = {"app_id": "no_such_app", "visitor_id": "v1"}
    with running_server(database_url) as url:
        async with httpx.AsyncClient(base_url=url, timeout=WAIT) as http:
            signed_in = await http.post(
                "/inbox/login", data={"email": email, "password": "long pw 1"}
            )
            assert signed_in.status_code == 303, signed_in.text
            for value in NOT_CHANGE_IDS:
                header = {b"Last-Event-ID": value}
                anonymous = await http.get("/api/widget/stream", params=unknown_app, headers=header)
                refused_as_last_event_id(anonymous, "Last-Event-ID")
                own = await http.get(
                    f"/api/projects/{project.app_id}/stream", headers={**team_bytes, **header}
                )
                refused_as_last_event_id(own, "Last-Event-ID")
                inbox = await http.get("/inbox/stream", headers=header)
                refused_as_last_event_id(inbox, "Last-Event-ID")
            for text in NOT_CHANGE_IDS_IN_QUERY:
                query = {"last_event_id": text}
                anonymous = await http.get("/api/widget/stream", params={**unknown_app, **query})
                refused_as_last_event_id(anonymous, "last_event_id")
                own = await http.get(
                    f"/api/projects/{project.app_id}/stream", params=query, headers=team
                )
                refused_as_last_event_id(own, "last_event_id")
        # The largest id the database holds is one: the stream opens (with nothing after it).
        async with stream(url, project.app_id, token, **{"Last-Event-ID": str(2**63 - 1)}):
            pass

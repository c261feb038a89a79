"""A credential that ends also ends the streams it opened (README "Live stream"): within 5 s of
a logout, a new password, an agent's removal, a token's revocation or
`rotate-secret --revoke-sessions`, a stream it authorized sends nothing more and closes.

Each test is the attacker's steps against a real `hal serve` with a real SSE client: open the
stream, see it deliver, end the credential the way the command line or the inbox does, write a
change the stream would carry, and find it neither delivered nor the stream still open.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

import httpx
import pytest

from hal.db.engine import Database
from hal.services import agents
from hal.services.projects import revoke_api_token, rotate_secret
from tests.factories import TestProject, make_project, make_token, unique, unique_email
from tests.servers import running_server
from tests.sse import Event, events

pytestmark = pytest.mark.server

WAIT = 10  # seconds to wait for a live event (a bound, not a measurement)
CLOSES_WITHIN = 5  # the rule: the stream has closed this long after its credential ended
# Once this has passed, a stream has had to check its credential again before sending (it does
# at least every 2 s, and a project's settings are at most 1 s old in a server's cache).
CHECK_IS_DUE = 3.5
PASSWORD = "long enough pw"


@asynccontextmanager
async def streaming(
    http: httpx.AsyncClient, path: str, **request: Any
) -> AsyncIterator[AsyncIterator[Event]]:
    async with http.stream("GET", path, **request) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        yield events(response)


async def next_event(source: AsyncIterator[Event]) -> Event:
    async with asyncio.timeout(WAIT):
        return await anext(source)


async def nothing_more_then_closed(
    source: AsyncIterator[Event],
    end_credential: Callable[[], Awaitable[object]],
    write_change: Callable[[], Awaitable[object]],
) -> list[Event]:
    """End the credential; once the stream must have checked it again, write a change it
    would carry. Returns what the stream delivered after the end; fails if it is still open
    `CLOSES_WITHIN` seconds after the end."""
    delivered: list[Event] = []

    async def read_to_the_end() -> None:
        async for event in source:
            delivered.append(event)

    await end_credential()
    ended = asyncio.get_running_loop().time()
    reader = asyncio.create_task(read_to_the_end())
    await asyncio.sleep(CHECK_IS_DUE)
    await write_change()
    left = ended + CLOSES_WITHIN - asyncio.get_running_loop().time()
    try:
        await asyncio.wait_for(reader, max(left, 0.1))
    except TimeoutError:
        pytest.fail(
            f"the stream was still open {CLOSES_WITHIN} s after its credential ended; "
            f"it delivered {[e.event for e in delivered]}"
        )
    return delivered


async def identify(url: str, project: TestProject, **fields: object) -> httpx.Response:
    async with httpx.AsyncClient(timeout=WAIT) as http:
        body = {"app_id": project.app_id, "visitor_id": unique("v"), **fields}
        answer = await http.post(f"{url}/api/widget/identify", json=body)
    assert answer.status_code == 200, answer.text
    return answer


def a_new_contact(url: str, project: TestProject) -> Callable[[], Awaitable[object]]:
    """A write every project stream carries (its contact.created)."""
    return lambda: identify(url, project, user_id=unique("u"))


# The inbox: its stream is authorized by the agent's login session.


async def make_agent(database: Database, project: TestProject) -> str:
    email = unique_email("agent")
    await database.transaction(
        lambda s: agents.create_agent(
            session=s, app_id=project.app_id, email=email, password=PASSWORD
        )
    )
    return email


async def log_in(browser: httpx.AsyncClient, email: str) -> None:
    answer = await browser.post("/inbox/login", data={"email": email, "password": PASSWORD})
    assert answer.status_code == 303, answer.text


async def log_out(browser: httpx.AsyncClient) -> None:
    page = await browser.get("/inbox")
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert csrf is not None, page.text
    answer = await browser.post("/inbox/logout", data={"csrf_token": csrf.group(1)})
    assert answer.status_code == 303, answer.text


async def set_password(database: Database, project: TestProject, email: str) -> None:
    """What `hal agents set-password` does."""
    await database.transaction(
        lambda s: agents.set_password(
            session=s, app_id=project.app_id, email=email, password="another long pw"
        )
    )


async def remove_agent(database: Database, project: TestProject, email: str) -> None:
    """What `hal agents remove` does."""
    await database.transaction(
        lambda s: agents.remove_agent(session=s, app_id=project.app_id, email=email)
    )


@pytest.mark.parametrize("ending", ["logout", "set_password", "remove_agent"])
async def test_an_inbox_stream_ends_with_its_login_session(database_url, database, ending):
    project = await make_project(database)
    email = await make_agent(database, project)
    with running_server(database_url) as url:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as browser:
            await log_in(browser, email)
            async with streaming(browser, "/inbox/stream") as source:
                seen = asyncio.create_task(next_event(source))
                await asyncio.sleep(0.2)
                await a_new_contact(url, project)()
                assert (await seen).event == "contact.created"  # it delivers while signed in

                async def end() -> None:
                    if ending == "logout":
                        await log_out(browser)
                    elif ending == "set_password":
                        await set_password(database, project, email)
                    else:
                        await remove_agent(database, project, email)

                delivered = await nothing_more_then_closed(source, end, a_new_contact(url, project))
    assert delivered == []


# The team API: its stream is authorized by a bearer token.


async def test_a_team_stream_ends_when_its_token_is_revoked(database_url, database):
    project = await make_project(database)
    token = await make_token(database, project)
    headers = {"Authorization": f"Bearer {token}"}
    path = f"/api/projects/{project.app_id}/stream"
    with running_server(database_url) as url:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
            async with streaming(http, path, headers=headers) as source:
                seen = asyncio.create_task(next_event(source))
                await asyncio.sleep(0.2)
                await a_new_contact(url, project)()
                assert (await seen).event == "contact.created"

                async def revoke() -> None:  # what `hal tokens revoke` does
                    await database.transaction(
                        lambda s: revoke_api_token(session=s, app_id=project.app_id, token=token)
                    )

                delivered = await nothing_more_then_closed(
                    source, revoke, a_new_contact(url, project)
                )
            assert (await http.get(path, headers=headers)).status_code == 401
    assert delivered == []


async def test_a_team_stream_opened_by_a_ticket_ends_when_its_token_is_revoked(
    database_url, database
):
    project = await make_project(database)
    token = await make_token(database, project)
    path = f"/api/projects/{project.app_id}/stream"
    with running_server(database_url) as url:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
            asked = await http.post(f"{path}-tickets", headers={"Authorization": f"Bearer {token}"})
            assert asked.status_code == 201, asked.text
            ticket = asked.json()["ticket"]
            async with streaming(http, path, params={"ticket": ticket}) as source:
                seen = asyncio.create_task(next_event(source))
                await asyncio.sleep(0.2)
                await a_new_contact(url, project)()
                assert (await seen).event == "contact.created"

                async def revoke() -> None:
                    await database.transaction(
                        lambda s: revoke_api_token(session=s, app_id=project.app_id, token=token)
                    )

                delivered = await nothing_more_then_closed(
                    source, revoke, a_new_contact(url, project)
                )
    assert delivered == []


# The widget: a verified visitor's stream is authorized by its session token.


async def next_reply(source: AsyncIterator[Event]) -> Event:
    """The next agent's message (PostgreSQL numbers the visitor's own message after commit: it
    may come first)."""
    async with asyncio.timeout(WAIT):
        async for event in source:
            if event.json()["data"].get("author") == "agent":
                return event
    raise AssertionError("the stream ended")


async def test_a_widget_stream_ends_when_its_session_is_revoked(database_url, database):
    project = await make_project(database)
    team_token = await make_token(database, project)
    visitor = unique("v")
    with running_server(database_url) as url:
        timeout = httpx.Timeout(WAIT, read=WAIT)
        async with httpx.AsyncClient(base_url=url, timeout=timeout) as http:
            signed = await http.post(
                "/api/widget/identify",
                json={"app_id": project.app_id, "visitor_id": visitor, "user_id": visitor,
                      "user_hash": project.hash(visitor)},
            )  # fmt: skip
            session_token = signed.json()["session_token"]
            asked = await http.post(
                "/api/widget/messages",
                json={"app_id": project.app_id, "visitor_id": visitor, "body": "hello?"},
                headers={"Authorization": f"Bearer {session_token}"},
            )
            assert asked.status_code == 200, asked.text
            conversation = asked.json()["conversation"]["id"]

            async def reply() -> None:
                answer = await http.post(
                    f"/api/projects/{project.app_id}/conversations/{conversation}/messages",
                    json={"body": "an agent's reply"},
                    headers={"Authorization": f"Bearer {team_token}"},
                )
                assert answer.status_code in {200, 201}, answer.text

            query = {"app_id": project.app_id, "visitor_id": visitor,
                     "session_token": session_token}  # fmt: skip
            async with streaming(http, "/api/widget/stream", params=query) as source:
                seen = asyncio.create_task(next_reply(source))
                await asyncio.sleep(0.2)
                await reply()
                assert (await seen).json()["data"]["body"] == "an agent's reply"

                async def revoke_sessions() -> None:  # `hal projects rotate-secret ...`
                    await database.transaction(
                        lambda s: rotate_secret(
                            session=s,
                            app_id=project.app_id,
                            grace=timedelta(0),
                            revoke_sessions=True,
                        )
                    )

                delivered = await nothing_more_then_closed(source, revoke_sessions, reply)
            again = await http.get("/api/widget/stream", params=query)
            assert again.status_code == 401, again.text
    assert delivered == []

"""Inbox sessions live on the server: a cookie someone kept stops working the moment the
agent logs out, is removed or gets a new password (README "Team API")."""

from __future__ import annotations

import asyncio
import hashlib
import re
import sys
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import select, update

from hal.db.models import Agent
from hal.db.models import AgentSession as SessionRow
from hal.db.types import utcnow
from hal.inbox.session import COOKIE
from hal.services import agents
from hal.services.agents import create_agent
from tests.factories import unique_email

PASSWORD = "long enough pw"


@pytest.fixture
async def agent(database, project):
    email = unique_email("agent")
    await database.transaction(
        lambda s: create_agent(session=s, app_id=project.app_id, email=email, password=PASSWORD)
    )
    return email


@pytest.fixture
async def browser(widget):
    """The agent's own browser: a client with its own cookie jar."""
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as http:
        yield http


@pytest.fixture
async def conversation(widget, project):
    visitor = unique_email("v")
    answer = await widget.call("messages", project, visitor, body="hello")
    return answer.json()["conversation"]["id"], visitor


async def log_in(browser: httpx.AsyncClient, email, password=PASSWORD) -> str:
    """Log in; returns the session cookie, as someone who copied it would hold it."""
    response = await browser.post("/inbox/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    return response.cookies[COOKIE]


async def csrf_token(client, path="/inbox") -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


def stolen(cookie: str) -> dict[str, str]:
    """Headers of another machine replaying a copied cookie."""
    return {"Cookie": f"{COOKIE}={cookie}"}


async def assert_cookie_is_dead(widget, cookie, conversation_id, csrf, project, visitor):
    headers = stolen(cookie)
    page = await widget.http.get(f"/inbox/conversations/{conversation_id}", headers=headers)
    assert page.status_code == 303
    assert page.headers["location"] == "/inbox/login"
    live = await widget.http.get(
        f"/inbox/conversations/{conversation_id}/messages.json", headers=headers
    )
    assert live.status_code == 401
    reply = await widget.http.post(
        f"/inbox/conversations/{conversation_id}/reply",
        data={"body": "sent with a dead cookie", "csrf_token": csrf},
        headers=headers,
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/inbox/login"
    thread = await widget.http.get(
        "/api/widget/messages", params={"app_id": project.app_id, "visitor_id": visitor}
    )
    assert [m["body"] for m in thread.json()["conversation"]["messages"]] == ["hello"]


async def hal(database_url: str, *args: str, stdin: str = "", ok: bool = True) -> bytes:
    """The `hal` command line, in its own process, as an operator runs it."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "hal", *args, "--database-url", database_url,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(stdin.encode())
    assert (process.returncode == 0) == ok, (out, err)
    return out if ok else err


async def test_after_logout_a_copied_cookie_reads_and_writes_nothing(
    widget, browser, agent, conversation, project
):
    conversation_id, visitor = conversation
    cookie = await log_in(browser, agent)
    csrf = await csrf_token(browser)
    # The attacker copied the cookie while the agent was logged in: it works, for now.
    assert (await widget.http.get("/inbox", headers=stolen(cookie))).status_code == 200
    logout = await browser.post("/inbox/logout", data={"csrf_token": csrf})
    assert logout.status_code == 303
    await assert_cookie_is_dead(widget, cookie, conversation_id, csrf, project, visitor)


async def test_removing_an_agent_ends_its_sessions(
    widget, browser, agent, conversation, project, database_url
):
    conversation_id, visitor = conversation
    cookie = await log_in(browser, agent)
    csrf = await csrf_token(browser)
    await hal(database_url, "agents", "remove", "--app-id", project.app_id, "--email", agent)
    await assert_cookie_is_dead(widget, cookie, conversation_id, csrf, project, visitor)
    refused = await browser.post("/inbox/login", data={"email": agent, "password": PASSWORD})
    assert refused.status_code == 401
    again = await hal(
        database_url, "agents", "remove", "--app-id", project.app_id, "--email", agent, ok=False
    )
    assert b"unknown_agent" in again


async def test_a_new_password_ends_every_session_of_the_agent(
    widget, browser, agent, conversation, project, database_url
):
    conversation_id, visitor = conversation
    cookie = await log_in(browser, agent)
    csrf = await csrf_token(browser)
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as laptop:
        second = await log_in(laptop, agent)
    await hal(
        database_url, "agents", "set-password", "--app-id", project.app_id, "--email", agent,
        "--password-stdin", stdin="a brand new password\n",
    )  # fmt: skip
    for old in (cookie, second):
        await assert_cookie_is_dead(widget, old, conversation_id, csrf, project, visitor)
    old_password = await browser.post("/inbox/login", data={"email": agent, "password": PASSWORD})
    assert old_password.status_code == 401
    await log_in(browser, agent, "a brand new password")
    assert (await browser.get(f"/inbox/conversations/{conversation_id}")).status_code == 200


async def test_an_expired_session_needs_a_new_login(
    widget, browser, agent, conversation, project, database
):
    conversation_id, visitor = conversation
    cookie = await log_in(browser, agent)
    csrf = await csrf_token(browser)

    async def expire(session):
        agent_id = select(Agent.id).where(Agent.email == agent).scalar_subquery()
        result = await session.execute(
            update(SessionRow)
            .where(SessionRow.agent_id == agent_id)
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
        return result.rowcount

    assert await database.transaction(expire) == 1
    await assert_cookie_is_dead(widget, cookie, conversation_id, csrf, project, visitor)


async def test_the_server_keeps_only_a_hash_of_the_cookie(browser, agent, database):
    cookie = await log_in(browser, agent)

    async def stored(session):
        agent_id = select(Agent.id).where(Agent.email == agent).scalar_subquery()
        rows = await session.execute(select(SessionRow).where(SessionRow.agent_id == agent_id))
        return list(rows.scalars())

    [row] = await database.transaction(stored)
    assert row.token_hash == hashlib.sha256(cookie.encode()).hexdigest()
    assert cookie not in (row.token_hash, row.csrf_token)
    assert len(cookie) >= 40  # 32 random bytes, not an id anyone could guess


async def test_a_made_up_or_tampered_cookie_is_a_login_page(widget, browser, agent):
    cookie = await log_in(browser, agent)
    for forged in ("1", cookie[:-1] + ("A" if cookie[-1] != "A" else "B"), "x" * 5000):
        response = await widget.http.get("/inbox", headers=stolen(forged))
        assert response.status_code == 303
        assert response.headers["location"] == "/inbox/login"


async def test_a_login_checked_just_before_a_password_change_gets_no_session(
    database, project, agent
):
    # The attacker's old password passes its check; the new password lands before the
    # session is written: the session must not outlive the change.
    candidates = await database.transaction(
        lambda s: agents.login_candidates(session=s, email=agent, app_id=None)
    )
    found = await agents.authenticate(candidates, PASSWORD)
    assert found is not None
    await database.transaction(
        lambda s: agents.set_password(
            session=s, app_id=project.app_id, email=agent, password="changed in between"
        )
    )
    token = await database.transaction(
        lambda s: agents.start_session(session=s, agent=found[0], ttl=timedelta(hours=1))
    )
    assert token is None

"""The inbox's login, CSRF protection and security headers, over the real app."""

from __future__ import annotations

import re

import httpx
import pytest

from hal.services.agents import create_agent
from tests.factories import unique_email


@pytest.fixture
async def agent(database, project):
    email = unique_email("agent")
    await database.transaction(
        lambda s: create_agent(
            session=s, app_id=project.app_id, email=email, password="long enough pw"
        )
    )
    return email, "long enough pw"


@pytest.fixture
async def inbox(widget):
    # A client of its own: the login cookie must not leak into other tests.
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as http:
        yield http


async def log_in(inbox, email, password):
    response = await inbox.post("/inbox/login", data={"email": email, "password": password})
    assert response.status_code == 303, response.text
    return response


async def test_pages_need_a_login(inbox):
    response = await inbox.get("/inbox")
    assert response.status_code == 303
    assert response.headers["location"] == "/inbox/login"
    assert (await inbox.get("/inbox/conversations.json")).status_code == 401


async def test_the_session_cookie_is_httponly_and_samesite(inbox, agent):
    cookie = (await log_in(inbox, *agent)).headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=lax" in cookie and "path=/inbox" in cookie


async def test_a_wrong_password_is_401(inbox, agent):
    response = await inbox.post("/inbox/login", data={"email": agent[0], "password": "nope"})
    assert response.status_code == 401


async def test_forms_without_the_csrf_token_are_refused(inbox, agent, widget, project):
    visitor = unique_email("v")
    conversation = (await widget.call("messages", project, visitor, body="hello")).json()[
        "conversation"
    ]
    await log_in(inbox, *agent)
    url = f"/inbox/conversations/{conversation['id']}/reply"
    forged = await inbox.post(url, data={"body": "forged"})
    assert forged.status_code == 403
    page = (await inbox.get(f"/inbox/conversations/{conversation['id']}")).text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    genuine = await inbox.post(url, data={"body": "real reply", "csrf_token": token})
    assert genuine.status_code == 303
    thread = (
        await widget.http.get(
            "/api/widget/messages", params={"app_id": project.app_id, "visitor_id": visitor}
        )
    ).json()["conversation"]["messages"]
    assert [m["body"] for m in thread] == ["hello", "real reply"]


async def test_inbox_pages_carry_security_headers(inbox, agent):
    await log_in(inbox, *agent)
    response = await inbox.get("/inbox")
    assert response.status_code == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-content-type-options"] == "nosniff"


async def test_an_agent_sees_only_its_own_project(inbox, agent, widget, new_project):
    other = await new_project()
    foreign = (await widget.call("messages", other, "v-other", body="secret")).json()
    await log_in(inbox, *agent)
    page = await inbox.get(f"/inbox/conversations/{foreign['conversation']['id']}")
    assert page.status_code == 404
    assert "secret" not in (await inbox.get("/inbox?status=all")).text

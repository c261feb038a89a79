"""README "Agents and roles": the admin API's agents, their roles, and the last admin."""

from __future__ import annotations

import httpx
import pytest

from hal.inbox.session import COOKIE
from tests.factories import make_token, unique_email
from tests.integration.conftest import TeamClient

PASSWORD = "a long password"


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


async def _delete(client: TeamClient, path: str):
    url = f"/api/projects/{client.project.app_id}{path}"
    return await client.http.delete(url, headers={"Authorization": f"Bearer {client.token}"})


async def _session_cookie(widget, email: str, password: str) -> dict[str, str]:
    """Log in through the inbox's form; the session cookie as a header."""
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as browser:
        answer = await browser.post("/inbox/login", data={"email": email, "password": password})
        assert answer.status_code == 303, answer.text
        return {"Cookie": f"{COOKIE}={answer.cookies[COOKIE]}"}


async def test_the_first_agent_is_an_admin_and_the_last_admin_stays(admin):
    first = await admin.post("/agents", {"email": unique_email("lead"), "password": PASSWORD})
    assert first.status_code == 201, first.text
    assert first.json()["role"] == "admin"
    second = await admin.post(
        "/agents", {"email": unique_email("agent"), "password": PASSWORD, "name": "Bo"}
    )
    assert (second.json()["role"], second.json()["name"]) == ("agent", "Bo")
    lead, other = first.json()["id"], second.json()["id"]

    demoted = await admin.patch(f"/agents/{lead}", {"role": "agent"})
    assert demoted.status_code == 409, demoted.text
    assert demoted.json()["error"]["code"] == "last_admin"
    removed = await _delete(admin, f"/agents/{lead}")
    assert removed.status_code == 409

    promoted = await admin.patch(f"/agents/{other}", {"role": "admin"})
    assert promoted.json()["role"] == "admin"
    assert (await admin.patch(f"/agents/{lead}", {"role": "agent"})).status_code == 200
    listed = await admin.get("/agents")
    assert {a["id"]: a["role"] for a in listed.json()["items"]} == {lead: "agent", other: "admin"}
    assert (await _delete(admin, f"/agents/{lead}")).status_code == 204
    assert [a["id"] for a in (await admin.get("/agents")).json()["items"]] == [other]


async def test_a_new_password_ends_the_agents_sessions(admin, widget):
    email = unique_email("pw")
    made = await admin.post("/agents", {"email": email, "password": PASSWORD, "role": "agent"})
    agent_id = made.json()["id"]
    cookie = await _session_cookie(widget, email, PASSWORD)
    assert (await widget.http.get("/inbox", headers=cookie)).status_code == 200
    reset = await admin.patch(f"/agents/{agent_id}", {"password": "another long one"})
    assert reset.status_code == 200, reset.text
    after = await widget.http.get("/inbox", headers=cookie)
    assert (after.status_code, after.headers.get("location")) == (303, "/inbox/login")
    assert await _session_cookie(widget, email, "another long one")  # the new one works


async def test_agents_need_an_admin_token_and_bad_input_is_named(admin, team):
    assert (await team.get("/agents")).status_code == 403
    assert (
        await team.post("/agents", {"email": "a@b.co", "password": PASSWORD})
    ).status_code == 403
    for body, field in (
        ({"email": "a@b.co", "password": "short"}, "password"),
        ({"email": "a@b.co", "password": PASSWORD, "role": "owner"}, "role"),
        ({"email": "nope", "password": PASSWORD}, "email"),
    ):
        refused = await admin.post("/agents", body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == field
    email = unique_email("twice")
    await admin.post("/agents", {"email": email, "password": PASSWORD})
    again = await admin.post("/agents", {"email": email, "password": PASSWORD})
    assert again.status_code == 409
    assert (await admin.patch("/agents/999999", {"name": "x"})).status_code == 404
    assert (await admin.patch("/agents/1", {"role": None})).status_code == 422

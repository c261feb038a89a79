"""README "Admin console": the console's screens answer an admin and refuse an agent (403),
and every form goes through the admin API's own checks and service calls (HTTP level; the
Chromium walk is tests/browser/test_console.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hal.services.agents import create_agent
from tests.factories import unique_email

PASSWORD = "long enough pw"
PAGES = ["/admin/settings", "/admin/verification", "/admin/installation", "/admin/refusals",
         "/admin/agents"]  # fmt: skip


@asynccontextmanager
async def _browser(widget, database, project, role: str) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in agent's browser with its own cookie jar."""
    email = unique_email(role)
    await database.transaction(
        lambda s: create_agent(
            session=s, app_id=project.app_id, email=email, password=PASSWORD, role=role
        )
    )
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as client:
        login = {"email": email, "password": PASSWORD, "workspace": project.app_id}
        answer = await client.post("/inbox/login", data=login)
        assert answer.status_code == 303, answer.text
        yield client


@pytest.fixture
async def admin(widget, database, project):
    async with _browser(widget, database, project, "admin") as client:
        yield client


async def _csrf(client, path: str) -> str:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert found is not None
    return found.group(1)


async def test_an_agent_gets_403_on_every_console_page_and_action(widget, database, project):
    async with _browser(widget, database, project, "agent") as agent:
        for path in PAGES:
            assert (await agent.get(path)).status_code == 403, path
        token = await _csrf(agent, "/inbox")
        refused = await agent.post("/admin/settings", data={"name": "x", "csrf_token": token})
        assert refused.status_code == 403
    anonymous = await widget.http.get("/admin/settings")
    assert (anonymous.status_code, anonymous.headers["location"]) == (303, "/inbox/login")


async def test_an_admin_changes_a_setting_and_sees_errors_next_to_the_field(admin):
    for path in PAGES:
        assert (await admin.get(path)).status_code == 200, path
    token = await _csrf(admin, "/admin/settings")
    form = {"csrf_token": token, "name": "Renamed", "allowed_origins": "https://App.acme.com/",
            "stage_mode": "forward_only", "stages": "Lead\nTrial", "protected_keys": "plan",
            "company_claims": "open"}  # fmt: skip
    saved = await admin.post("/admin/settings", data=form)
    assert (saved.status_code, saved.headers["location"]) == (303, "/admin/settings?saved=1")
    page = (await admin.get("/admin/settings")).text
    assert "Renamed" in page and "https://app.acme.com" in page and "Saved" not in page
    wrong = await admin.post("/admin/settings", data={**form, "allowed_origins": "not a url"})
    assert wrong.status_code == 422
    assert 'id="f-allowed_origins-error"' in wrong.text and 'aria-invalid="true"' in wrong.text
    no_csrf = await admin.post("/admin/settings", data={**form, "csrf_token": "nope"})
    assert no_csrf.status_code == 403


async def test_a_rotated_secret_is_shown_once(admin, database, project):
    token = await _csrf(admin, "/admin/verification")
    rotated = await admin.post("/admin/verification/rotate",
                               data={"csrf_token": token, "grace_hours": "2"})  # fmt: skip
    assert rotated.status_code == 200
    assert rotated.headers["cache-control"] == "no-store"
    secret = re.search(r'<code class="shown-once">([0-9a-f]{64})</code>', rotated.text)
    assert secret is not None and secret.group(1) != project.secret
    again = await admin.get("/admin/verification")
    assert secret.group(1) not in again.text
    wrong = await admin.post("/admin/verification/rotate",
                             data={"csrf_token": token, "grace_hours": "-3"})  # fmt: skip
    assert wrong.status_code == 422 and 'id="f-grace_hours-error"' in wrong.text


async def test_an_admin_adds_an_agent_and_the_last_admin_stays(admin):
    token = await _csrf(admin, "/admin/agents")
    email = unique_email("new")
    form = {"csrf_token": token, "email": email, "password": PASSWORD, "role": "agent"}
    added = await admin.post("/admin/agents", data=form)
    assert added.status_code == 303, added.text
    assert email in (await admin.get("/admin/agents")).text
    short = await admin.post(
        "/admin/agents", data={**form, "email": unique_email(), "password": "short"}
    )
    assert short.status_code == 422 and 'id="f-password-error"' in short.text
    page = (await admin.get("/admin/agents")).text
    own_id = re.search(r'action="/admin/agents/(\d+)/role"', page)
    assert own_id is not None
    demoted = await admin.post(f"/admin/agents/{own_id.group(1)}/role",
                               data={"csrf_token": token, "role": "agent"})  # fmt: skip
    assert demoted.status_code == 409
    assert "keeps at least one admin" in demoted.text

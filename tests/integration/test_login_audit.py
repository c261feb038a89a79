"""Inbox logins, failed and successful, are audit entries (README "Security"): who (the agent,
when the email is one), what (`agent.login`, `agent.login_failed`), the email tried, when;
never the password. Read back through GET /api/projects/{app_id}/audit with an admin token."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hal.app import create_app
from hal.config import Settings
from hal.services.agents import create_agent
from tests.factories import make_token, unique_email

PASSWORD = "long enough pw"
WRONG = "not-the-password-42"


@pytest.fixture
async def app(database) -> AsyncIterator[httpx.AsyncClient]:
    """An app of its own: its login throttle counts only this test's attempts."""
    settings = Settings(database_url=database.url, login_failures_per_email="3/15 minutes")
    built = create_app(settings, database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=built), base_url="http://hal.test"
    ) as http:
        yield http
    await built.state.login_throttle.close()
    await built.state.admission.close()


@pytest.fixture
async def agent(database, project) -> tuple[int, str]:
    email = unique_email("agent")
    created = await database.transaction(
        lambda s: create_agent(session=s, app_id=project.app_id, email=email, password=PASSWORD)
    )
    return created.id, email


async def log_in(app: httpx.AsyncClient, email, password, workspace=None) -> httpx.Response:
    form = {"email": email, "password": password}
    if workspace is not None:
        form["workspace"] = workspace
    return await app.post("/inbox/login", data=form)


async def login_entries(app, database, project) -> list[dict[str, Any]]:
    token = await make_token(database, project, admin=True)
    answer = await app.get(
        f"/api/projects/{project.app_id}/audit",
        params={"limit": 200},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert answer.status_code == 200, answer.text
    return [e for e in answer.json()["items"] if e["action"].startswith("agent.login")]


def recent(entry: dict[str, Any]) -> bool:
    at = datetime.fromisoformat(entry["created_at"])
    at = at if at.tzinfo else at.replace(tzinfo=UTC)
    return abs(datetime.now(UTC) - at) < timedelta(minutes=1)


async def test_a_successful_login_is_audited_as_the_agent(app, database, project, agent):
    agent_id, email = agent
    assert (await log_in(app, email, PASSWORD)).status_code == 303
    [entry] = await login_entries(app, database, project)
    assert entry["action"] == "agent.login"
    assert entry["actor"] == {"type": "agent", "id": agent_id}
    assert entry["target"] == email
    assert recent(entry)
    assert PASSWORD not in str(entry)


async def test_a_wrong_password_is_audited_as_a_failed_login_of_the_agent(
    app, database, project, agent
):
    agent_id, email = agent
    assert (await log_in(app, email.upper(), WRONG)).status_code == 401
    [entry] = await login_entries(app, database, project)
    assert entry["action"] == "agent.login_failed"
    assert entry["actor"] == {"type": "agent", "id": agent_id}
    assert entry["target"] == email
    assert recent(entry)
    assert WRONG not in str(entry) and entry["changes"] == {}


async def test_an_unknown_email_is_audited_as_a_failed_login_with_no_agent(
    app, database, project, agent
):
    stranger = unique_email("nobody")
    answer = await log_in(app, stranger, WRONG, workspace=project.app_id)
    assert answer.status_code == 401
    assert "Wrong email or password." in answer.text  # the same answer as a wrong password
    [entry] = await login_entries(app, database, project)
    assert entry["action"] == "agent.login_failed"
    assert entry["actor"] == {"type": "agent", "id": None}
    assert entry["target"] == stranger
    assert recent(entry)
    assert WRONG not in str(entry)


async def test_failures_then_a_success_read_in_order(app, database, project, agent):
    agent_id, email = agent
    assert (await log_in(app, email, WRONG)).status_code == 401
    stranger = unique_email("x")
    assert (await log_in(app, stranger, WRONG, workspace=project.app_id)).status_code == 401
    assert (await log_in(app, email, PASSWORD)).status_code == 303
    entries = await login_entries(app, database, project)
    assert [(e["action"], e["actor"]["id"]) for e in entries] == [
        ("agent.login", agent_id),
        ("agent.login_failed", None),
        ("agent.login_failed", agent_id),
    ]


async def test_a_throttled_attempt_is_refused_without_an_audit_entry(app, database, project, agent):
    _, email = agent
    statuses = [(await log_in(app, email, WRONG)).status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    entries = await login_entries(app, database, project)
    assert [e["action"] for e in entries] == ["agent.login_failed"] * 3


async def test_a_login_for_another_project_is_not_in_this_ones_audit_log(
    app, database, project, new_project, agent
):
    _, email = agent
    other = await new_project()
    assert (await log_in(app, email, PASSWORD, workspace=other.app_id)).status_code == 401
    assert await login_entries(app, database, project) == []
    [entry] = await login_entries(app, database, other)
    assert (entry["action"], entry["actor"]["id"]) == ("agent.login_failed", None)

"""The inbox's login, CSRF protection and security headers, over the real app."""

from __future__ import annotations

import asyncio
import base64
import re
import secrets

import httpx
import pytest
from argon2 import PasswordHasher, extract_parameters

from hal.app import create_app
from hal.config import Settings
from hal.services import agents
from hal.services.agents import create_agent
from tests.conftest import require_or_skip
from tests.factories import unique, unique_email
from tests.integration.test_rate_limits import REDIS, redis_answers


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
    found = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert found is not None
    token = found.group(1)
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


async def test_an_old_conversation_with_a_new_message_is_on_the_first_page(
    inbox, agent, widget, project
):
    """The inbox shows the 100 most recently active conversations, not the 100 newest."""
    await widget.call("messages", project, "v-oldest", body="first words")
    for n in range(100):
        await widget.call("messages", project, f"v-{n}", body=f"message {n}")
    await widget.call("messages", project, "v-oldest", body="back again")
    await log_in(inbox, *agent)
    listed = (await inbox.get("/inbox/conversations.json")).json()
    assert len(listed) == 100
    assert listed[0]["last_message"]["body"] == "back again"
    assert "back again" in (await inbox.get("/inbox")).text


# Login throttling: failures are counted per email and per client address.


def from_address(widget, address):
    """A client connecting from `address` (request.client.host on the server)."""
    transport = httpx.ASGITransport(app=widget.http._transport.app, client=(address, 40000))
    return httpx.AsyncClient(transport=transport, base_url="http://hal.test")


def unique_address():
    return f"10.{secrets.randbelow(256)}.{secrets.randbelow(256)}.{secrets.randbelow(256)}"


def assert_throttled(response):
    assert response.status_code == 429, response.text
    assert 1 <= int(response.headers["retry-after"]) <= 15 * 60
    assert "Too many failed logins" in response.text


async def test_guessing_one_agents_password_is_stopped_after_10_failures(widget, agent):
    email, password = agent
    # The attacker even spreads the guesses over many addresses: the email is what counts.
    for guess in range(10):
        async with from_address(widget, unique_address()) as attacker:
            answer = await attacker.post(
                "/inbox/login", data={"email": email, "password": f"guess {guess}"}
            )
            assert answer.status_code == 401
    async with from_address(widget, unique_address()) as attacker:
        assert_throttled(
            await attacker.post("/inbox/login", data={"email": email, "password": "guess 10"})
        )
        # Even the right password waits: a lucky 11th guess would otherwise get through.
        assert_throttled(
            await attacker.post("/inbox/login", data={"email": email, "password": password})
        )


async def test_one_address_spraying_many_emails_is_stopped_after_30_failures(widget, agent):
    email, password = agent
    async with from_address(widget, unique_address()) as attacker:
        for _ in range(30):
            answer = await attacker.post(
                "/inbox/login", data={"email": unique_email("who"), "password": "password1"}
            )
            assert answer.status_code == 401
        assert_throttled(
            await attacker.post("/inbox/login", data={"email": email, "password": "password1"})
        )
        assert_throttled(
            await attacker.post("/inbox/login", data={"email": email, "password": password})
        )
    # The agent, from its own address, is not locked out by the attacker's address.
    async with from_address(widget, unique_address()) as own:
        await log_in(own, email, password)


async def test_parallel_guesses_do_not_slip_under_the_limit(widget, agent):
    email, _ = agent
    async with from_address(widget, unique_address()) as attacker:
        answers = await asyncio.gather(
            *(
                attacker.post("/inbox/login", data={"email": email, "password": f"guess {i}"})
                for i in range(14)
            )
        )
    assert sorted(a.status_code for a in answers) == [401] * 10 + [429] * 4


async def test_two_processes_share_the_counts_through_redis(database, agent):
    if not redis_answers():
        require_or_skip("no Redis server answers at 127.0.0.1:6379")
    email, _ = agent
    settings = Settings(
        database_url=database.url, rate_limit_storage=REDIS, login_failures_per_email="3/minute"
    )
    apps = [create_app(settings, database=database) for _ in range(2)]
    statuses = []
    try:
        for attempt in range(5):  # the attacker alternates between two server processes
            transport = httpx.ASGITransport(app=apps[attempt % 2])
            async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
                answer = await http.post("/inbox/login", data={"email": email, "password": "no"})
                statuses.append(answer.status_code)
    finally:
        for app in apps:
            await app.state.login_throttle.close()
            await app.state.admission.close()
    assert statuses == [401, 401, 401, 429, 429]


# An unknown email is refused after the same argon2 work as a wrong password.


class CountingHasher(PasswordHasher):
    """The real argon2 hasher, recording the hashes it verifies against."""

    def __init__(self) -> None:
        super().__init__()
        self.verified: list[str] = []

    def verify(self, hash, password):
        self.verified.append(hash)
        return super().verify(hash, password)


async def test_an_unknown_email_runs_the_same_argon2_verification(
    database, project, agent, monkeypatch
):
    email, _ = agent
    hasher = CountingHasher()
    monkeypatch.setattr(agents, "_hasher", hasher)

    async def attempt(who):
        candidates = await database.transaction(
            lambda s: agents.login_candidates(session=s, email=who, app_id=None)
        )
        return await agents.authenticate(candidates, "guess")

    assert await attempt(email) is None
    [real] = hasher.verified
    assert await attempt(unique_email("nobody")) is None
    assert await attempt(unique_email("nobody")) is None
    [_, dummy, dummy_again] = hasher.verified
    # A genuine argon2 hash with the very parameters (memory, time, parallelism) of a real one.
    assert extract_parameters(dummy) == extract_parameters(real)
    assert dummy_again == dummy and dummy != real


# Ids the database cannot hold are a 4xx naming the field, never a 500.

TOO_BIG = 2**64
TEAM_ID_ROUTES = [
    ("get", "/contacts/{id}", None, "contact_id"),
    ("patch", "/contacts/{id}", {"name": "x"}, "contact_id"),
    ("get", "/conversations/{id}", None, "conversation_id"),
    ("post", "/conversations/{id}/messages", {"body": "hi"}, "conversation_id"),
    ("post", "/conversations/{id}/close", None, "conversation_id"),
    ("post", "/conversations/{id}/reopen", None, "conversation_id"),
    ("get", "/events?contact_id={id}", None, "contact_id"),
]


def assert_names_the_field(response, field):
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(("method", "path", "body", "field"), TEAM_ID_ROUTES)
@pytest.mark.parametrize("value", [TOO_BIG, 2**63, -(2**63) - 1, 0, -1])
async def test_team_routes_refuse_ids_out_of_range(team, method, path, body, field, value):
    url = f"/api/projects/{team.project.app_id}{path.format(id=value)}"
    headers = {"Authorization": f"Bearer {team.token}"}
    response = await team.http.request(method, url, json=body, headers=headers)
    assert_names_the_field(response, field)


def cursor_of(value):
    return base64.urlsafe_b64encode(str(value).encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/contacts", "/conversations", "/events"])
@pytest.mark.parametrize("value", [TOO_BIG, -(2**63) - 1, 0])
async def test_list_routes_refuse_cursors_out_of_range(team, path, value):
    assert_names_the_field(await team.get(path, cursor=cursor_of(value)), "cursor")


async def test_inbox_routes_refuse_ids_out_of_range(inbox, agent, widget, project):
    visitor = unique_email("v")
    await widget.call("messages", project, visitor, body="hello")
    await log_in(inbox, *agent)
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', (await inbox.get("/inbox")).text)
    assert csrf is not None
    form = {"csrf_token": csrf.group(1), "body": "hi"}
    for value in (TOO_BIG, 0, -1):
        for method, path, field in [
            ("get", f"/inbox/conversations/{value}", "conversation_id"),
            ("get", f"/inbox/conversations/{value}/messages.json", "conversation_id"),
            ("post", f"/inbox/conversations/{value}/reply", "conversation_id"),
            ("post", f"/inbox/conversations/{value}/close", "conversation_id"),
            ("get", f"/inbox/contacts/{value}", "contact_id"),
        ]:
            data = form if method == "post" else None
            assert_names_the_field(await inbox.request(method, path, data=data), field)
    conversation = (await inbox.get("/inbox/conversations.json")).json()[0]["id"]
    after = await inbox.get(f"/inbox/conversations/{conversation}/messages.json?after={TOO_BIG}")
    assert_names_the_field(after, "after")


# Company ids are one encoded path segment in the inbox's links.


async def test_a_company_id_cannot_lead_a_link_to_another_page(
    inbox, agent, widget, project, team_for
):
    evil = "../contacts/1"
    answer = await widget.identify(
        project, user_id=unique("u"), signed=True, company={"id": evil, "name": "Evil Corp"}
    )
    assert answer.status_code == 200, answer.text
    contact_id = answer.json()["contact"]["id"]
    await log_in(inbox, *agent)
    page = (await inbox.get(f"/inbox/contacts/{contact_id}")).text
    assert 'href="/inbox/companies/..%2Fcontacts%2F1"' in page
    assert 'href="/inbox/companies/../contacts/1"' not in page
    company_page = await inbox.get("/inbox/companies/..%2Fcontacts%2F1")
    assert company_page.status_code == 200
    assert "Evil Corp" in company_page.text
    assert 'action="/inbox/companies/..%2Fcontacts%2F1/stage"' in company_page.text
    found = re.search(r'name="csrf_token" value="([^"]+)"', company_page.text)
    assert found is not None
    csrf = found.group(1)
    staged = await inbox.post(
        "/inbox/companies/..%2Fcontacts%2F1/stage", data={"stage": "Customer", "csrf_token": csrf}
    )
    assert staged.status_code == 303
    assert staged.headers["location"] == "/inbox/companies/..%2Fcontacts%2F1"
    team = await team_for(project)
    detail = await team.get("/companies/..%2Fcontacts%2F1")
    assert detail.status_code == 200, detail.text
    assert (detail.json()["company"]["id"], detail.json()["company"]["stage"]) == (
        evil,
        "Customer",
    )


async def test_the_inbox_shows_an_email_no_proof_signed_as_unverified(
    inbox, agent, widget, project
):
    user, lead_email = unique("u"), unique_email("lead")
    await widget.identify(project, email=lead_email)
    await widget.identify(project, user_id=user, email=lead_email)  # an unsigned lead claim
    answer = await widget.identify(project, user_id=user, signed=True)
    contact = answer.json()["contact"]
    assert contact["verified"] and not contact["email_verified"]
    await log_in(inbox, *agent)
    page = (await inbox.get(f"/inbox/contacts/{contact['id']}")).text
    assert "unverified email" in page and ">Verified<" in page
    signed = await widget.identify(project, email=unique_email(), signed=True)
    page = (await inbox.get(f"/inbox/contacts/{signed.json()['contact']['id']}")).text
    assert "verified email" in page and "unverified email" not in page

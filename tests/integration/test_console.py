"""README "Admin console": the console's screens answer an admin and refuse an agent (403),
and every form goes through the admin API's own checks and service calls (HTTP level; the
Chromium walk is tests/browser/test_console.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
import pytest

from hal.app import create_app
from hal.config import Settings
from hal.db.queries import project_by_app_id
from hal.domain.roles import Role
from hal.services.agents import create_agent
from hal.services.audit import Actor, record_audit
from tests.factories import unique, unique_email

PASSWORD = "long enough pw"
PAGES = ["/admin/settings", "/admin/verification", "/admin/installation", "/admin/refusals",
         "/admin/agents", "/admin/tokens", "/admin/webhooks", "/admin/attributes",
         "/admin/views", "/admin/privacy", "/admin/audit"]  # fmt: skip
# Every console action, each refused to an agent before it reads its form.
ACTIONS = ["/admin/settings", "/admin/verification/mode", "/admin/verification/rotate",
           "/admin/verification/check", "/admin/agents", "/admin/agents/1/role",
           "/admin/agents/1/password", "/admin/agents/1/remove", "/admin/tokens",
           "/admin/tokens/1/revoke", "/admin/webhooks", "/admin/webhooks/1",
           "/admin/webhooks/1/enabled", "/admin/webhooks/1/rotate", "/admin/webhooks/1/test",
           "/admin/webhooks/1/deliveries/1/retry", "/admin/webhooks/1/replay",
           "/admin/webhooks/1/remove", "/admin/attributes", "/admin/attributes/contact/plan",
           "/admin/attributes/contact/plan/archived", "/admin/views/1/rename",
           "/admin/views/1/delete", "/admin/privacy/retention", "/admin/privacy/lift",
           "/admin/privacy/erase", "/admin/privacy/export"]  # fmt: skip


@pytest.fixture(scope="session")
async def private_hooks(database) -> AsyncIterator[httpx.AsyncBaseTransport]:
    """The app as a developer runs it: webhook receivers on loopback are allowed."""
    app = create_app(
        Settings(database_url=database.url, webhooks_allow_private=True), database=database
    )
    yield httpx.ASGITransport(app=app)


@asynccontextmanager
async def _browser(
    widget, database, project, role: str, transport: httpx.AsyncBaseTransport | None = None
) -> AsyncIterator[httpx.AsyncClient]:
    """A signed-in agent's browser with its own cookie jar."""
    email = unique_email(role)
    await database.transaction(
        lambda s: create_agent(
            session=s, app_id=project.app_id, email=email, password=PASSWORD, role=Role(role)
        )
    )
    async with httpx.AsyncClient(
        transport=transport or widget.http._transport, base_url="http://hal.test"
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
        for path in ACTIONS:
            refused = await agent.post(path, data={"name": "x", "csrf_token": token})
            assert refused.status_code == 403, path
        assert (await agent.get("/admin/webhooks/1")).status_code == 403
        assert (await agent.get("/admin/attributes/contact/plan")).status_code == 403
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


async def test_a_nul_in_a_form_or_a_filter_is_a_422_naming_it_and_nothing_is_saved(admin):
    """PostgreSQL stores no NUL in text: one in a form field or a query parameter is refused
    before any route reads it, as in a JSON body (it reached the database as a 500)."""
    token = await _csrf(admin, "/admin/settings")
    form = {"csrf_token": token, "name": "Nul\x00name", "stage_mode": "overwrite",
            "company_claims": "open"}  # fmt: skip
    refused = await admin.post("/admin/settings", data=form)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"] == {
        "code": "invalid_string",
        "message": "name contains a NUL character",
        "field": "name",
    }
    assert "Nul" not in (await admin.get("/admin/settings")).text
    filtered = await admin.get("/admin/audit", params={"action": "project.updated\x00"})
    assert (filtered.status_code, filtered.json()["error"]["field"]) == (422, "action")


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


@pytest.fixture
async def hooks_admin(widget, database, project, private_hooks):
    async with _browser(widget, database, project, "admin", private_hooks) as client:
        yield client


def _shown_once(page: str) -> str:
    found = re.search(r'<code class="shown-once">([^<]+)</code>', page)
    assert found is not None, page
    return found.group(1)


async def test_a_webhook_endpoint_is_added_with_its_secret_shown_once_then_edited_and_tested(
    hooks_admin,
):
    token = await _csrf(hooks_admin, "/admin/webhooks")
    url = "http://127.0.0.1:9/hooks"
    form = {"csrf_token": token, "url": url, "events": ["contact.created", "contact.updated"]}
    created = await hooks_admin.post("/admin/webhooks", data=form)
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    secret = _shown_once(created.text)
    assert secret.startswith("whsec_")
    endpoint = re.search(r'href="/admin/webhooks/(\d+)"', created.text)
    assert endpoint is not None
    path = f"/admin/webhooks/{endpoint.group(1)}"
    listed = (await hooks_admin.get("/admin/webhooks")).text
    assert url in listed and "contact.updated" in listed and secret not in listed

    edited = await hooks_admin.post(path, data={"csrf_token": token, "url": url + "/v2"})
    assert (edited.status_code, edited.headers["location"]) == (303, f"{path}?saved=1")
    rotated = await hooks_admin.post(f"{path}/rotate", data={"csrf_token": token})
    assert rotated.status_code == 200 and _shown_once(rotated.text) not in (secret, "")
    tested = await hooks_admin.post(f"{path}/test", data={"csrf_token": token})
    assert tested.headers["location"] == f"{path}?done=test"
    page = (await hooks_admin.get(tested.headers["location"])).text
    assert "webhook.test" in page and "Every type but" not in page
    message = re.search(rf'action="{path}/deliveries/(\d+)/retry"', page)
    assert message is not None
    retried = await hooks_admin.post(message.group(0)[8:-1], data={"csrf_token": token})
    assert retried.headers["location"] == f"{path}?done=retry"

    disabled = await hooks_admin.post(f"{path}/enabled",
                                      data={"csrf_token": token, "enabled": "false"})  # fmt: skip
    assert disabled.headers["location"] == f"{path}?done=disabled"
    refused = await hooks_admin.post(f"{path}/test", data={"csrf_token": token})
    assert refused.status_code == 409 and "enable it first" in refused.text
    replay = await hooks_admin.post(f"{path}/replay",
                                    data={"csrf_token": token, "since": "yesterday"})  # fmt: skip
    assert replay.status_code == 422 and 'id="f-since-error"' in replay.text
    removed = await hooks_admin.post(f"{path}/remove", data={"csrf_token": token})
    assert removed.headers["location"] == "/admin/webhooks"
    assert (await hooks_admin.get(path)).status_code == 404


async def test_a_webhook_url_on_an_internal_address_is_refused_next_to_the_url(admin):
    token = await _csrf(admin, "/admin/webhooks")
    refused = await admin.post(
        "/admin/webhooks", data={"csrf_token": token, "url": "http://127.0.0.1:9/hooks"}
    )
    assert refused.status_code == 422
    assert 'id="f-url-error"' in refused.text and 'value="http://127.0.0.1:9/hooks"' in refused.text
    unknown = await admin.post(
        "/admin/webhooks",
        data={"csrf_token": token, "url": "http://127.0.0.1:9/", "events": ["nope.made_up"]},
    )
    assert unknown.status_code == 422 and 'id="f-events-error"' in unknown.text


async def test_a_token_is_shown_once_works_and_stops_when_revoked(admin, widget, project):
    page = await _csrf(admin, "/admin/tokens")
    form = {"csrf_token": page, "label": "CRM sync", "kind": "team"}
    created = await admin.post("/admin/tokens", data=form)
    assert created.status_code == 200 and created.headers["cache-control"] == "no-store"
    token = _shown_once(created.text)
    contacts = f"/api/projects/{project.app_id}/contacts"
    bearer = {"Authorization": f"Bearer {token}"}
    assert (await widget.http.get(contacts, headers=bearer)).status_code == 200
    listed = (await admin.get("/admin/tokens")).text
    assert "CRM sync" in listed and token not in listed
    found = re.search(r'action="(/admin/tokens/\d+/revoke)"', listed)
    assert found is not None
    revoked = await admin.post(found.group(1), data={"csrf_token": page})
    assert (revoked.status_code, revoked.headers["location"]) == (303, "/admin/tokens?revoked=1")
    assert (await widget.http.get(contacts, headers=bearer)).status_code == 401
    long = await admin.post("/admin/tokens", data={**form, "label": "x" * 300})
    assert long.status_code == 422 and 'id="f-label-error"' in long.text


async def test_a_user_hash_is_checked_valid_or_invalid_without_showing_the_secret(admin, project):
    token = await _csrf(admin, "/admin/verification")
    right = {"csrf_token": token, "user_id": "u-42", "user_hash": project.hash("u-42")}
    valid = await admin.post("/admin/verification/check", data=right)
    assert valid.status_code == 200
    assert "Valid." in valid.text and "current secret" in valid.text
    assert project.secret not in valid.text
    wrong = await admin.post("/admin/verification/check", data={**right, "user_hash": "0" * 64})
    assert wrong.status_code == 200 and "Invalid." in wrong.text
    both = await admin.post("/admin/verification/check", data={**right, "email": "a@example.com"})
    assert both.status_code == 422 and 'id="f-email-error"' in both.text
    neither = await admin.post(
        "/admin/verification/check", data={"csrf_token": token, "user_hash": "abc"}
    )
    assert neither.status_code == 422 and 'id="f-user_id-error"' in neither.text


async def test_an_attribute_is_defined_with_a_type_edited_and_archived(admin, team):
    token = await _csrf(admin, "/admin/attributes")
    form = {"csrf_token": token, "model": "contact", "key": "tier", "type": "list",
            "label": "Tier", "options": "Gold\nSilver, plated\n"}  # fmt: skip
    created = await admin.post("/admin/attributes", data=form)
    assert (created.status_code, created.headers["location"]) == (303, "/admin/attributes?saved=1")
    assert "<code>tier</code>" in (await admin.get("/admin/attributes")).text
    listed = {a["key"]: a for a in (await team.get("/attributes")).json()["items"]}
    assert listed["tier"]["options"] == ["Gold", "Silver, plated"]  # one option a line
    again = await admin.post("/admin/attributes", data=form)
    assert again.status_code == 409 and 'id="f-key-error"' in again.text
    no_options = await admin.post("/admin/attributes", data={**form, "key": "t2", "options": ""})
    assert no_options.status_code == 422 and 'id="f-options-error"' in no_options.text
    assert 'value="t2"' in no_options.text

    edit = "/admin/attributes/contact/tier"
    assert "Archive" in (await admin.get(edit)).text
    edited = await admin.post(edit, data={"csrf_token": token, "label": "Plan tier",
                                          "description": "Billing", "options": "Gold\nBronze",
                                          "has_options": "yes"})  # fmt: skip
    assert edited.headers["location"] == f"{edit}?saved=1"
    listed = {a["key"]: a for a in (await team.get("/attributes")).json()["items"]}
    assert (listed["tier"]["label"], listed["tier"]["options"]) == ("Plan tier", ["Gold", "Bronze"])
    empty = await admin.post(edit, data={"csrf_token": token, "label": "x", "has_options": "yes"})
    assert empty.status_code == 422 and 'id="f-options-error"' in empty.text
    archived = await admin.post(f"{edit}/archived", data={"csrf_token": token, "archived": "true"})
    assert archived.status_code == 303
    listed = {a["key"]: a for a in (await team.get("/attributes")).json()["items"]}
    assert listed["tier"]["archived"] is True
    assert (await admin.get("/admin/attributes/contact/email")).status_code == 404


async def test_saved_views_are_listed_with_counts_opened_renamed_and_deleted(admin, team):
    made = await team.post("/views", {"name": "Everyone", "model": "contacts"})
    assert made.status_code == 201, made.text
    other = await team.post("/views", {"name": "Taken", "model": "contacts"})
    view_id = made.json()["id"]
    page = (await admin.get("/admin/views")).text
    assert f'href="/inbox/contacts?view={view_id}"' in page and "Everyone" in page
    token = await _csrf(admin, "/admin/views")
    rename = f"/admin/views/{view_id}/rename"
    renamed = await admin.post(rename, data={"csrf_token": token, "name": "All people"})
    assert renamed.status_code == 303
    assert (await team.get(f"/views/{view_id}")).json()["name"] == "All people"
    taken = await admin.post(rename, data={"csrf_token": token, "name": "Taken"})
    assert taken.status_code == 409 and f'id="name-{view_id}-error"' in taken.text
    deleted = await admin.post(f"/admin/views/{other.json()['id']}/delete",
                               data={"csrf_token": token})  # fmt: skip
    assert deleted.status_code == 303
    assert "Taken" not in (await admin.get("/admin/views")).text


async def test_the_inbox_links_to_the_console_for_admins_only(admin, widget, database, project):
    assert 'href="/admin">Admin console</a>' in (await admin.get("/inbox")).text
    assert 'href="/inbox">' in (await admin.get("/admin/settings")).text
    async with _browser(widget, database, project, "agent") as agent:
        assert "Admin console" not in (await agent.get("/inbox")).text


async def _person(widget, project) -> tuple[str, str]:
    user_id, email = unique("u"), unique_email("Sue")
    identified = await widget.identify(project, user_id=user_id, email=email, signed=True)
    assert identified.status_code == 200, identified.text
    return user_id, email


async def test_retention_is_saved_through_the_settings_and_refused_next_to_its_field(admin, team):
    token = await _csrf(admin, "/admin/privacy")
    form = {"csrf_token": token, "event_retention_days": "90", "conversation_retention_days": ""}
    saved = await admin.post("/admin/privacy/retention", data=form)
    assert (saved.status_code, saved.headers["location"]) == (303, "/admin/privacy?saved=1")
    assert 'value="90"' in (await admin.get("/admin/privacy")).text
    wrong = await admin.post("/admin/privacy/retention",
                             data={**form, "conversation_retention_days": "-2"})  # fmt: skip
    assert wrong.status_code == 422 and 'id="f-conversation_retention_days-error"' in wrong.text


async def test_a_person_is_exported_then_erased_after_confirming_and_the_suppression_lifted(
    admin, widget, project
):
    user_id, email = await _person(widget, project)
    token = await _csrf(admin, "/admin/privacy")
    export = {"csrf_token": token, "key": "user_id", "value": user_id}
    exported = await admin.post("/admin/privacy/export", data=export)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-disposition"].startswith('attachment; filename="contact-')
    assert exported.json()["contact"]["email"] == email
    nobody = {**export, "key": "email", "value": "no@one.io"}
    missing = await admin.post("/admin/privacy/export", data=nobody)
    assert missing.status_code == 404 and 'id="export-value-error"' in missing.text

    form = {"csrf_token": token, "key": "email", "value": email, "suppress": "yes"}
    mismatch = await admin.post("/admin/privacy/erase", data={**form, "confirm": email + "x"})
    assert mismatch.status_code == 422 and 'id="erase-confirm-error"' in mismatch.text
    assert (await widget.identify(project, user_id=user_id, signed=True)).status_code == 200
    erased = await admin.post("/admin/privacy/erase", data={**form, "confirm": email})
    assert erased.status_code == 303 and erased.headers["location"].startswith(
        "/admin/privacy?erased="
    )
    page = (await admin.get(erased.headers["location"])).text
    assert "is erased" in page and email not in page and user_id not in page
    refused = await widget.identify(project, user_id=user_id, signed=True)
    assert refused.json()["error"]["code"] == "suppressed"
    again = await admin.post("/admin/privacy/erase", data={**form, "confirm": email})
    assert again.status_code == 404 and 'id="erase-value-error"' in again.text

    lift = re.search(r'name="hash" value="([0-9a-f]{64})"', page)
    assert lift is not None
    lifted = await admin.post("/admin/privacy/lift", data={"csrf_token": token, "hash": lift[1]})
    assert lifted.headers["location"] == "/admin/privacy?lifted=1"
    assert (await widget.identify(project, user_id=user_id, signed=True)).status_code == 200


async def test_the_audit_log_is_filtered_by_actor_action_and_date_and_paged(
    admin, database, project
):
    token = await _csrf(admin, "/admin/tokens")
    for n in range(3):
        made = await admin.post("/admin/tokens", data={"csrf_token": token, "label": f"t{n}"})
        assert made.status_code == 200
    page = await admin.get("/admin/audit", params={"action": "token.created"})
    assert page.status_code == 200 and page.text.count("<code>token.created</code>") == 3
    own = re.search(r'<option value="(agent:\d+)"', page.text)
    assert own is not None
    mine = await admin.get("/admin/audit", params={"actor": own[1], "action": "token.created"})
    assert mine.text.count("<code>token.created</code>") == 3
    others = await admin.get("/admin/audit", params={"actor": "cli", "action": "token.created"})
    assert "<code>token.created</code>" not in others.text and "No audit entries" in others.text
    later = await admin.get("/admin/audit", params={"since": "2999-01-01"})
    assert "No audit entries" in later.text
    wrong = await admin.get("/admin/audit", params={"since": "2026-02-30"})
    assert wrong.status_code == 422 and 'id="f-since-error"' in wrong.text
    backwards = await admin.get(
        "/admin/audit", params={"since": "2026-02-03", "until": "2026-02-01"}
    )
    assert backwards.status_code == 422 and 'id="f-until-error"' in backwards.text

    async def entries(tx):
        found = await project_by_app_id(tx.orm, project.app_id)
        assert found is not None
        for n in range(51):
            await record_audit(tx, project_id=found.id, actor=Actor("cli"),
                               action="console.paged", target=str(n))  # fmt: skip

    await database.run(entries)
    first = await admin.get("/admin/audit", params={"action": "console.paged"})
    assert first.text.count("<code>console.paged</code>") == 50
    older = re.search(r'href="(/admin/audit\?action=console.paged&amp;cursor=[^"]+)"', first.text)
    assert older is not None
    second = await admin.get(older[1].replace("&amp;", "&"))
    assert (
        second.text.count("<code>console.paged</code>") == 1 and "Older entries" not in second.text
    )

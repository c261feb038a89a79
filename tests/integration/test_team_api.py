"""README "Team API": bearer tokens, search, details, paging, agent stage writes."""

from __future__ import annotations

import pytest

from tests.factories import unique

ROUTES = [
    ("get", "/contacts"),
    ("get", "/contacts/1"),
    ("get", "/companies/acme"),
    ("get", "/conversations"),
    ("get", "/conversations/1"),
    ("get", "/events"),
]


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_missing_or_wrong_token_is_401(team, method, path):
    url = f"/api/projects/{team.project.app_id}{path}"
    missing = await team.http.request(method, url)
    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "missing_token"
    wrong = await team.http.request(method, url, headers={"Authorization": "Bearer hal_nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize(("method", "path"), ROUTES)
async def test_a_token_never_reaches_another_projects_data(
    team, team_for, new_project, method, path
):
    other = await new_project()
    other_team = await team_for(other)
    url = f"/api/projects/{other.app_id}{path}"
    response = await team.http.request(
        method, url, headers={"Authorization": f"Bearer {team.token}"}
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "token_not_for_project"
    assert other_team.token != team.token


async def test_ids_of_another_project_are_not_found(widget, team, team_for, new_project):
    other = await new_project()
    visitor = unique("v")
    contact = (
        await widget.identify(other, visitor_id=visitor, user_id="u1", company={"id": "acme"})
    ).json()["contact"]
    conversation = (await widget.call("messages", other, visitor, body="private")).json()[
        "conversation"
    ]
    assert (await team.get(f"/contacts/{contact['id']}")).status_code == 404
    assert (await team.get("/companies/acme")).status_code == 404
    assert (await team.get(f"/conversations/{conversation['id']}")).status_code == 404
    reply = await team.post(f"/conversations/{conversation['id']}/messages", {"body": "x"})
    assert reply.status_code == 404
    assert (await team.get("/contacts")).json()["items"] == []


async def test_contacts_search_by_name_email_or_user_id(widget, team):
    project = team.project
    await widget.identify(project, user_id="acct-1", email="ann.lee@acme.com", name="Ann Lee")
    await widget.identify(project, user_id="acct-2", email="bob@beta.com", name="Bob Stone")

    async def found(q):
        return sorted(c["user_id"] for c in (await team.get("/contacts", q=q)).json()["items"])

    assert await found("ann") == ["acct-1"]
    assert await found("BOB@") == ["acct-2"]
    assert await found("acct-") == ["acct-1", "acct-2"]
    assert await found("zzz") == []
    assert await found("%") == []  # wildcards are literal


async def test_contacts_are_paged_by_cursor(widget, team):
    for i in range(5):
        await widget.identify(team.project, user_id=f"u{i}")
    seen, cursor = [], None
    while True:
        page = (await team.get("/contacts", limit=2, cursor=cursor)).json()
        seen += [c["user_id"] for c in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["u4", "u3", "u2", "u1", "u0"]
    assert (await team.get("/contacts", cursor="garbage!")).status_code == 422


async def test_contact_detail_has_the_whole_context(widget, team):
    project, visitor = team.project, unique("v")
    contact = (
        await widget.identify(
            project,
            visitor_id=visitor,
            user_id="u1",
            name="Ann",
            metadata={"plan": "pro"},
            company={"id": "acme", "name": "Acme", "stage": "Trial"},
            company_ids=["beta"],
            signed=True,
        )
    ).json()
    token = contact["session_token"]
    await widget.call("set-deal", project, visitor, token=token, deal={"id": "d1", "amount": 10})
    await widget.call("track", project, visitor, token=token, event="seat-added")
    await widget.call("messages", project, visitor, token=token, body="hi")
    detail = (await team.get(f"/contacts/{contact['contact']['id']}")).json()
    assert detail["contact"]["verified"] is True
    assert detail["contact"]["metadata"] == {"plan": "pro"}
    assert detail["active_company"]["id"] == "acme"
    assert [(c["id"], c["active"]) for c in detail["companies"]] == [
        ("acme", True),
        ("beta", False),
    ]
    assert [(d["id"], d["company_id"]) for d in detail["deals"]] == [("d1", "acme")]
    assert detail["events"][0]["name"] == "seat-added"
    assert detail["conversations"][0]["last_message"]["body"] == "hi"


async def test_company_detail_and_the_agent_stage_write(widget, team):
    project, visitor = team.project, unique("v")
    await widget.identify(
        project, visitor_id=visitor, user_id="u1", company={"id": "acme", "stage": "Lead"}
    )
    patched = await team.patch("/companies/acme", {"stage": "Customer"})
    assert patched.status_code == 200, patched.text
    assert patched.json()["applied"] is True and patched.json()["previous"] == "Lead"
    detail = (await team.get("/companies/acme")).json()
    assert detail["company"]["stage"] == "Customer"
    assert detail["stage_source"] == "agent"
    assert [(h["value"], h["source"]) for h in detail["stage_history"]] == [
        ("Customer", "agent"),
        ("Lead", "widget"),
    ]
    assert [c["user_id"] for c in detail["contacts"]] == ["u1"]
    assert detail["contact_count"] == 1


async def test_an_agent_stage_is_kept_against_agent_wins_widget_writes(
    widget, team_for, new_project
):
    project = await new_project(stage_mode="agent_wins")
    team = await team_for(project)
    visitor = unique("v")
    await widget.identify(
        project, visitor_id=visitor, user_id="u1", company={"id": "acme", "stage": "Lead"}
    )
    await team.patch("/companies/acme", {"stage": "Customer"})
    skipped = (await widget.call("set-stage", project, visitor, stage="Churned")).json()
    assert skipped["stage"] == {
        "applied": False,
        "previous": "Customer",
        "stage": "Customer",
        "mode": "agent_wins",
        "reason": "set_by_agent",
    }


async def test_events_are_filtered_and_paged_newest_first(widget, team):
    project, visitor = team.project, unique("v")
    contact = (
        await widget.identify(project, visitor_id=visitor, user_id="u1", company={"id": "acme"})
    ).json()["contact"]
    for i in range(5):
        await widget.call("track", project, visitor, event="step", properties={"i": i})
    await widget.call("track", project, visitor, event="other", company_id="acme")
    page = (await team.get("/events", name="step", limit=3)).json()
    assert [e["properties"]["i"] for e in page["items"]] == [4, 3, 2]
    rest = (await team.get("/events", name="step", cursor=page["next_cursor"])).json()
    assert [e["properties"]["i"] for e in rest["items"]] == [1, 0]
    assert rest["next_cursor"] is None
    by_company = (await team.get("/events", company_id="acme")).json()["items"]
    assert [e["name"] for e in by_company] == ["other"]
    by_contact = (await team.get("/events", contact_id=contact["id"])).json()["items"]
    assert len(by_contact) == 6


async def test_unknown_records_are_404_with_a_code(team):
    assert (await team.get("/contacts/999999")).json()["error"]["code"] == "unknown_contact"
    assert (await team.get("/companies/none-such")).json()["error"]["code"] == "unknown_company"
    assert (await team.get("/events", company_id="none-such")).status_code == 404


async def test_a_company_with_200_contacts_and_100_metadata_keys(widget, team):
    project = team.project
    for i in range(200):
        await widget.identify(project, user_id=f"u{i:03}", company_ids=["big"])
    metadata = {f"key{i}": i for i in range(100)}
    contact = (await widget.identify(project, user_id="u000", metadata=metadata)).json()
    detail = (await team.get("/companies/big")).json()
    assert detail["contact_count"] == 200 and len(detail["contacts"]) == 100
    full = (await team.get(f"/contacts/{contact['contact']['id']}")).json()
    assert len(full["contact"]["metadata"]) == 100


async def test_conversations_page_by_latest_activity(widget, team):
    """An old conversation with a new message comes back to the first page, and paging
    through shows every conversation once."""
    project = team.project
    visitors = [unique("v") for _ in range(4)]
    for visitor in visitors:
        await widget.call("messages", project, visitor, body=f"first from {visitor}")
    await widget.call("messages", project, visitors[0], body="the oldest speaks again")
    first = (await team.get("/conversations", limit=2)).json()
    assert first["items"][0]["last_message"]["body"] == "the oldest speaks again"
    seen = [c["id"] for c in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (await team.get("/conversations", limit=2, cursor=cursor)).json()
        seen += [c["id"] for c in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen)) == 4
    bad = await team.get("/conversations", cursor="bm90LWEtY3Vyc29y")
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "cursor"

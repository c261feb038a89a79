"""README "Saved views": the team's named searches under /api/projects/{app_id}/views, each
listed with how many records it finds now; a view's query is checked like a search's.
SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.factories import make_token, unique
from tests.integration.conftest import TeamClient

ENTERPRISE = {"field": "metadata.plan", "operator": "=", "value": "enterprise"}


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


async def delete(team: TeamClient, path: str, token: str | None = None) -> httpx.Response:
    url = f"/api/projects/{team.project.app_id}{path}"
    return await team.http.delete(url, headers={"Authorization": f"Bearer {token or team.token}"})


async def saved(team: TeamClient, **body: Any) -> dict[str, Any]:
    made = await team.post("/views", {"model": "contacts", **body})
    assert made.status_code == 201, made.text
    return made.json()  # type: ignore[no-any-return]


def counts(answer: httpx.Response) -> dict[str, int | None]:
    assert answer.status_code == 200, answer.text
    return {view["name"]: view["count"] for view in answer.json()["items"]}


async def define_plan(admin: TeamClient) -> None:
    """`metadata.plan` is searchable before any contact has a plan."""
    defined = await admin.post("/attributes", {"model": "contact", "key": "plan", "type": "string"})
    assert defined.status_code == 201, defined.text


async def identified(widget, project, **fields: Any) -> str:
    visitor = unique("v")
    made = await widget.identify(project, visitor_id=visitor, user_id=unique("u"), **fields)
    assert made.status_code == 200, made.text
    return visitor


async def test_a_view_is_saved_listed_read_edited_and_deleted(widget, team, admin, project):
    await identified(widget, project, metadata={"plan": "enterprise"})
    await identified(widget, project, metadata={"plan": "free"})
    sort = {"field": "created_at", "order": "asc"}
    view = await saved(team, name="  Enterprise  ", query=ENTERPRISE, sort=sort)
    assert {k: view[k] for k in ("name", "model", "query", "sort", "count", "count_exact")} == {
        "name": "Enterprise", "model": "contacts", "query": ENTERPRISE, "sort": sort,
        "count": 1, "count_exact": True,
    }  # fmt: skip
    assert view["problem"] is None
    path = f"/views/{view['id']}"

    assert [v["id"] for v in (await team.get("/views")).json()["items"]] == [view["id"]]
    read = await team.get(path)
    assert read.status_code == 200, read.text
    assert read.json() == view

    renamed = await team.patch(path, {"name": "Big accounts"})
    assert renamed.status_code == 200, renamed.text
    assert (renamed.json()["name"], renamed.json()["query"]) == ("Big accounts", ENTERPRISE)
    everyone = await team.patch(path, {"query": None, "sort": None})
    assert everyone.status_code == 200, everyone.text
    body = everyone.json()
    assert (body["name"], body["query"], body["sort"], body["count"]) == (
        "Big accounts", None, None, 2)  # fmt: skip

    gone = await delete(team, path)
    assert gone.status_code == 204, gone.text
    assert (await team.get(path)).status_code == 404
    assert (await team.get("/views")).json()["items"] == []
    assert (await delete(team, path)).status_code == 404

    audit = (await admin.get("/audit")).json()["items"]
    actions = [e["action"] for e in audit if e["action"].startswith("view.")]
    assert {e["target"] for e in audit if e["action"].startswith("view.")} == {str(view["id"])}
    assert actions == ["view.deleted", "view.updated", "view.updated", "view.created"]


async def test_a_view_without_a_query_lists_every_record(widget, team, project):
    view = await saved(team, name="Everyone")
    assert (view["query"], view["count"]) == (None, 0)
    await identified(widget, project)
    assert counts(await team.get("/views")) == {"Everyone": 1}


async def test_the_counts_follow_the_data(widget, team, admin, project):
    await define_plan(admin)
    await saved(team, name="Enterprise", query=ENTERPRISE)
    await saved(team, name="Not enterprise", query={**ENTERPRISE, "operator": "!="})
    assert counts(await team.get("/views")) == {"Enterprise": 0, "Not enterprise": 0}

    for plan in ("enterprise", "Enterprise", "free"):
        await identified(widget, project, metadata={"plan": plan})
    await identified(widget, project)  # no plan: "not enterprise"
    assert counts(await team.get("/views")) == {"Enterprise": 2, "Not enterprise": 2}


async def test_each_model_has_its_views_and_counts(widget, team, project):
    for plan, stage in (("enterprise", "Trial"), ("free", "Trial"), ("enterprise", "Customer")):
        visitor = await identified(widget, project, metadata={"plan": plan},
                                   company={"id": unique("co"), "stage": stage})  # fmt: skip
        sent = await widget.call("messages", project, visitor, body=f"{plan} {stage}")
        assert sent.status_code == 200, sent.text
    trial = {"field": "stage", "operator": "=", "value": "trial"}
    await saved(team, name="Trial", model="companies", query=trial)
    await saved(
        team, name="Trial", model="conversations", query={**trial, "field": "company.stage"}
    )
    await saved(team, name="Trial", query={**trial, "field": "company.stage"})
    await saved(team, name="Enterprise", model="conversations",
                query={**ENTERPRISE, "field": "contact.metadata.plan"})  # fmt: skip

    listed = (await team.get("/views")).json()["items"]
    assert [(v["model"], v["name"], v["count"]) for v in listed] == [
        ("companies", "Trial", 2),
        ("conversations", "Trial", 2),
        ("contacts", "Trial", 2),
        ("conversations", "Enterprise", 2),
    ]
    conversations = await team.get("/views", model="conversations")
    assert counts(conversations) == {"Trial": 2, "Enterprise": 2}
    assert (await team.get("/views", model="deals")).status_code == 422


async def test_a_wrong_query_or_sort_in_a_view_is_422_naming_its_path(widget, team, project):
    await identified(widget, project, metadata={"seats": 3, "plan": "free"})
    query = {"operator": "AND", "value": [
        ENTERPRISE, {"field": "metadata.seats", "operator": ">", "value": "many"}]}  # fmt: skip
    wrong = await team.post("/views", {"name": "X", "model": "contacts", "query": query})
    assert wrong.status_code == 422, wrong.text
    error = wrong.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_query", "query.value[1].value")

    events = {"field": "event", "event": "signed-up", "operator": "exists"}
    wrong = await team.post("/views", {"name": "X", "model": "conversations", "query": events})
    assert wrong.json()["error"]["field"] == "query.field"
    wrong = await team.post("/views", {"name": "X", "model": "contacts",
                                       "sort": {"field": "company.name"}})  # fmt: skip
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "sort.field")

    view = await saved(team, name="Enterprise", query=ENTERPRISE)
    edited = await team.patch(f"/views/{view['id']}", {"name": "Y", "query": query})
    assert edited.status_code == 422, edited.text
    assert edited.json()["error"]["field"] == "query.value[1].value"
    assert (await team.get(f"/views/{view['id']}")).json() == view  # nothing changed
    assert (await team.get("/views")).json()["items"] == [view]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "   ", "model": "contacts"}, "name"),
        ({"name": "x" * 256, "model": "contacts"}, "name"),
        ({"name": 7, "model": "contacts"}, "name"),
        ({"model": "contacts"}, "name"),
        ({"name": "Deals", "model": "deals"}, "model"),
        ({"name": "Deals"}, "model"),
        ({"name": "X", "model": "contacts", "query": "plan = enterprise"}, "query"),
        ({"name": "X", "model": "contacts", "color": "red"}, "color"),
    ],
)
async def test_a_view_needs_a_name_and_a_model(team, body, field):
    refused = await team.post("/views", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_a_patch_takes_a_name_a_query_and_a_sort_only(team):
    view = await saved(team, name="Everyone")
    for body, field in (({"name": None}, "name"), ({"name": " "}, "name"),
                        ({"model": "companies"}, "model")):  # fmt: skip
        refused = await team.patch(f"/views/{view['id']}", body)
        assert refused.status_code == 422, refused.text
        assert refused.json()["error"]["field"] == field
    assert (await team.get(f"/views/{view['id']}")).json() == view


async def test_a_name_is_taken_once_per_model(team, admin):
    await define_plan(admin)
    await saved(team, name="Hot")
    again = await team.post("/views", {"name": " Hot ", "model": "contacts"})
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert (error["code"], error["field"]) == ("view_exists", "name")
    await saved(team, name="Hot", model="companies")  # another model's names are its own

    other = await saved(team, name="Cold")
    taken = await team.patch(f"/views/{other['id']}", {"name": "Hot"})
    assert taken.status_code == 409 and taken.json()["error"]["code"] == "view_exists"
    same = await team.patch(f"/views/{other['id']}", {"name": "Cold", "query": ENTERPRISE})
    assert same.status_code == 200, same.text


async def test_a_view_of_another_project_is_not_found(widget, team, team_for, new_project):
    b_project = await new_project()
    b = await team_for(b_project)
    await identified(widget, b_project, metadata={"plan": "enterprise"})
    theirs = await saved(b, name="B's view", query=ENTERPRISE)
    path = f"/views/{theirs['id']}"
    for answer in (
        await team.get(path),
        await team.patch(path, {"name": "mine now"}),
        await delete(team, path),
    ):
        assert answer.status_code == 404, answer.text
        error = answer.json()["error"]
        assert (error["code"], error["field"]) == ("view_not_found", "view_id")
    assert (await team.get("/views")).json()["items"] == []

    with_a_token = await b.get(path, token=team.token)
    assert with_a_token.status_code == 403
    assert (await delete(b, path, token=team.token)).status_code == 403
    assert (await b.get(path)).json() == theirs


async def test_a_view_naming_a_removed_list_option_lists_why_it_has_no_count(
    widget, team, admin, project
):
    defined = await admin.post("/attributes", {"model": "contact", "key": "tier", "type": "list",
                                               "options": ["gold", "silver"]})  # fmt: skip
    assert defined.status_code == 201, defined.text
    await identified(widget, project, metadata={"tier": "gold"})
    gold = await saved(team, name="Gold", query={"field": "metadata.tier", "operator": "=",
                                                 "value": "gold"})  # fmt: skip
    await saved(team, name="Everyone")
    assert gold["count"] == 1
    edited = await admin.patch("/attributes/contact/tier", {"options": ["silver"]})
    assert edited.status_code == 200, edited.text

    listed = (await team.get("/views")).json()["items"]
    assert [(v["name"], v["count"]) for v in listed] == [("Gold", None), ("Everyone", 1)]
    assert listed[0]["problem"].startswith("query.value:")
    fixed = await team.patch(f"/views/{gold['id']}", {"query": None})
    assert (fixed.json()["count"], fixed.json()["problem"]) == (1, None)

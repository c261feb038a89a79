"""README "Attributes": every metadata key has a type, made by its first value (or by an admin
first) and never changed; writes are checked against it on every path. SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from hal.app import create_app
from hal.config import Settings
from tests.factories import make_token, unique, unique_email
from tests.imports import finished
from tests.integration.conftest import TeamClient


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


def by_key(answer: httpx.Response) -> dict[tuple[str, str], dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    return {(a["model"], a["key"]): a for a in answer.json()["items"]}


async def test_a_key_is_typed_by_its_first_value_and_listed_with_the_built_ins(
    widget, team, project
):
    made = await widget.identify(
        project,
        user_id=unique("u"),
        metadata={"plan": "pro", "seats": 12, "beta": True, "trial_started_at": 1764900000},
        company={"id": unique("c"), "metadata": {"arr": 50000.5}},
    )
    assert made.status_code == 200, made.text
    assert made.json()["contact"]["metadata"]["trial_started_at"] == "2025-12-05T02:00:00.000000Z"
    listed = by_key(await team.get("/attributes"))
    assert {key: listed[key]["type"] for key in listed if listed[key]["source"] == "auto"} == {
        ("contact", "plan"): "string",
        ("contact", "seats"): "number",
        ("contact", "beta"): "boolean",
        ("contact", "trial_started_at"): "date",
        ("company", "arr"): "number",
    }
    assert listed[("contact", "email")]["source"] == "builtin"
    assert listed[("company", "contact_count")]["type"] == "number"
    assert listed[("contact", "plan")]["created_at"] is not None


async def test_the_widget_keeps_its_identity_over_a_value_that_does_not_fit(widget, project):
    user_id = unique("u")
    await widget.identify(project, user_id=user_id, metadata={"seats": 3})
    company = unique("c")
    again = await widget.identify(
        project,
        user_id=user_id,
        name="Ann",
        metadata={"seats": "twelve", "plan": "pro"},
        company={"id": company, "metadata": {"arr": 1}},
    )
    wrong_company = await widget.identify(
        project, user_id=user_id, company={"id": company, "metadata": {"arr": "big"}}
    )
    assert again.status_code == 200, again.text
    body = again.json()
    assert body["warnings"] == ["attribute_type:seats"]
    assert body["contact"]["metadata"] == {"seats": 3, "plan": "pro"}
    assert body["contact"]["name"] == "Ann"
    assert wrong_company.json()["warnings"] == ["attribute_type:company.arr"]

    visitor = unique("v")
    anonymous = await widget.set_properties(project, visitor, {"seats": "x", "role": "cto"})
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["warnings"] == ["attribute_type:seats"]
    assert anonymous.json()["properties"] == {"role": "cto"}


async def test_the_team_api_batch_and_import_refuse_a_value_that_does_not_fit(
    widget, team, project
):
    made = await widget.identify(project, user_id=unique("u"), metadata={"seats": 3})
    contact_id = made.json()["contact"]["id"]
    refused = await team.patch(f"/contacts/{contact_id}", {"name": "X", "metadata": {"seats": "9"}})
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("attribute_type", "metadata.seats")
    assert (await team.get(f"/contacts/{contact_id}")).json()["contact"]["name"] is None

    batch = await team.post(
        "/batch",
        {"items": [
            {"type": "identify", "user_id": unique("u"), "metadata": {"seats": True}},
            {"type": "identify", "user_id": unique("u"), "metadata": {"seats": 4}},
        ]},
    )  # fmt: skip
    assert batch.status_code == 200, batch.text
    first, second = batch.json()["results"]
    assert first["status"] == "error"
    assert (first["error"]["code"], first["error"]["field"]) == (
        "attribute_type",
        "items[0].metadata.seats",
    )
    assert second["status"] == "ok"

    csv = f"user_id,metadata.seats\n{unique('u')},many\n{unique('u')},7\n"
    imported = await team.http.post(
        f"/api/projects/{project.app_id}/imports",
        params={"kind": "contacts"},
        content=csv.encode(),
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": "text/csv"},
    )
    imported = await finished(team.http, imported, team.token)
    assert imported.status_code == 200, imported.text
    result = imported.json()
    assert (result["created"], result["failed"]) == (1, 1)
    assert result["failures"][0]["code"] == "attribute_type"


async def test_an_admin_defines_a_list_and_a_date_before_first_use(widget, team, admin, project):
    created = await admin.post(
        "/attributes",
        {"model": "contact", "key": "tier", "type": "list", "label": "Tier",
         "options": ["gold", "silver"]},
    )  # fmt: skip
    assert created.status_code == 201, created.text
    assert created.json()["source"] == "admin" and created.json()["options"] == ["gold", "silver"]
    date = await admin.post("/attributes", {"model": "company", "key": "renewal", "type": "date"})
    assert date.status_code == 201, date.text
    again = await admin.post("/attributes", {"model": "contact", "key": "tier", "type": "string"})
    assert again.status_code == 409 and again.json()["error"]["code"] == "attribute_exists"
    assert (await team.post("/attributes", {"model": "contact", "key": "x", "type": "string"})
            ).status_code == 403  # fmt: skip

    outside = await widget.identify(project, user_id=unique("u"), metadata={"tier": "bronze"})
    assert outside.json()["warnings"] == ["attribute_type:tier"]
    inside = await widget.identify(project, user_id=unique("u"), metadata={"tier": "gold"})
    assert inside.json()["contact"]["metadata"] == {"tier": "gold"}
    company = await widget.identify(
        project, user_id=unique("u"),
        company={"id": unique("c"), "metadata": {"renewal": "2027-01-31"}},
    )  # fmt: skip
    assert company.json()["active_company"]["metadata"] == {
        "renewal": "2027-01-31T00:00:00.000000Z"
    }


async def test_an_admin_edits_labels_options_and_archives_but_never_the_type(
    widget, team, admin, project
):
    await widget.identify(project, user_id=unique("u"), metadata={"plan": "pro"})
    edited = await admin.patch("/attributes/contact/plan", {"label": "Plan", "description": "x"})
    assert edited.status_code == 200, edited.text
    assert (edited.json()["label"], edited.json()["type"]) == ("Plan", "string")
    typed = await admin.patch("/attributes/contact/plan", {"type": "number"})
    assert typed.status_code == 422  # a type never changes
    options = await admin.patch("/attributes/contact/plan", {"options": ["a"]})
    assert options.status_code == 422 and options.json()["error"]["field"] == "options"
    assert (await admin.patch("/attributes/contact/nope", {"label": "x"})).status_code == 404

    archived = await admin.patch("/attributes/contact/plan", {"archived": True})
    assert archived.json()["archived"] is True
    widget_write = await widget.identify(project, user_id=unique("u"), metadata={"plan": "pro"})
    assert widget_write.json()["warnings"] == ["attribute_archived:plan"]
    made = await widget.identify(project, user_id=unique("u"))
    team_write = await team.patch(
        f"/contacts/{made.json()['contact']['id']}", {"metadata": {"plan": "x"}}
    )
    assert team_write.status_code == 422
    assert team_write.json()["error"]["code"] == "attribute_archived"
    audit = await admin.get("/audit")
    assert "attribute.updated" in {entry["action"] for entry in audit.json()["items"]}


async def test_archived_null_is_refused_naming_the_field_and_changes_nothing(
    widget, admin, project
):
    """`archived` is true or false: a null (schemathesis sent one) is a 422 naming it, never a
    500 from the column's NOT NULL; label and description may still be cleared with null."""
    await widget.identify(project, user_id=unique("u"), metadata={"seats": 3})
    refused = await admin.patch("/attributes/contact/seats", {"archived": None, "label": "S"})
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == "archived"
    cleared = await admin.patch("/attributes/contact/seats", {"label": None})
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["label"], cleared.json()["archived"]) == (None, False)


@pytest.fixture
async def few_attributes(database) -> AsyncIterator[httpx.AsyncClient]:
    settings = Settings(database_url=database.url, max_attributes=2)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        yield http


async def test_a_write_past_the_attribute_limit_is_refused_for_the_new_keys(
    few_attributes, project
):
    body = {"app_id": project.app_id, "visitor_id": unique("v"), "user_id": unique("u"),
            "metadata": {"a": 1, "b": 2}}  # fmt: skip
    assert (await few_attributes.post("/api/widget/identify", json=body)).status_code == 200
    more = {**body, "visitor_id": unique("v"), "email": unique_email(), "metadata": {"c": 3}}
    answer = await few_attributes.post("/api/widget/identify", json=more)
    assert answer.status_code == 200, answer.text
    assert answer.json()["warnings"] == ["too_many_attributes:c"]
    assert "c" not in answer.json()["contact"]["metadata"]


async def test_stored_values_of_another_type_are_counted_as_nonconforming(
    widget, team, admin, project
):
    await admin.post("/attributes", {"model": "contact", "key": "seen_at", "type": "date"})
    made = await widget.identify(project, user_id=unique("u"), metadata={"seen_at": 1764900000})
    assert made.json()["warnings"] == []
    listed = by_key(await team.get("/attributes"))
    assert listed[("contact", "seen_at")]["nonconforming"] == 0

"""README "Batch writes and imports": POST /api/projects/{app_id}/batch writes identify,
set_properties, track, set_stage and set_deal items through the widget's own rules, each
committed on its own, answering one result per item in order."""

from __future__ import annotations

import json

import httpx
import pytest

from hal.app import create_app
from hal.config import Settings
from tests.factories import make_project, make_token, unique, unique_email
from tests.integration.test_change_log import changes


def identify(user_id: str | None = None, **fields):
    item = {"type": "identify", **fields}
    if user_id is not None:
        item["user_id"] = user_id
    return item


async def batch(team, *items, token=None):
    return await team.post("/batch", {"items": list(items)}, token=token)


async def ok(team, *items):
    answer = await batch(team, *items)
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["failed"] == 0, body
    return body["results"]


async def test_every_item_type_is_written_in_order_as_the_widget_would(team, inspect):
    user, email = unique("u"), unique_email()
    results = await ok(
        team,
        identify(user, email=email, name="Ann", company={"id": "acme", "name": "Acme"}),
        {"type": "set_properties", "user_id": user, "properties": {"plan": "pro"}},
        {"type": "track", "email": email, "event": "signed-up", "properties": {"via": "api"}},
        {"type": "set_stage", "user_id": user, "stage": "Customer"},
        {"type": "set_deal", "user_id": user,
         "deal": {"id": "d1", "amount": 100, "currency": "EUR"}},
    )  # fmt: skip
    assert [r["index"] for r in results] == [0, 1, 2, 3, 4]
    assert {r["status"] for r in results} == {"ok"}
    contact_id = results[0]["contact_id"]
    assert {r["contact_id"] for r in results} == {contact_id}
    [contact] = await inspect.contacts(team.project.app_id)
    assert (contact.id, contact.user_id, contact.email, contact.name) == (
        contact_id,
        user,
        email,
        "Ann",
    )
    assert contact.metadata_ == {"plan": "pro"}
    assert contact.verified is False  # the team's token is no proof of the person
    [company] = await inspect.companies(team.project.app_id)
    assert (company.external_id, company.name, company.stage) == ("acme", "Acme", "Customer")
    assert company.stage_source == "api"
    [event] = await inspect.events(team.project.app_id, name="signed-up")
    assert (event.contact_id, event.visitor_row_id, event.properties) == (
        contact_id,
        None,
        {"via": "api"},
    )
    [deal] = await inspect.deals(team.project.app_id)
    assert (deal.external_id, deal.amount, deal.currency) == ("d1", 100, "EUR")


async def test_a_failing_item_fails_alone_and_names_its_field(team, inspect):
    user = unique("u")
    answer = await batch(
        team,
        identify(user),
        identify(unique("u"), email="not an email"),
        {"type": "set_properties", "user_id": unique("nobody"), "properties": {"a": 1}},
        {"type": "track", "user_id": user},
        {"type": "launch"},
        "identify",
        {"type": "set_stage", "stage": "Trial"},
        {"type": "set_properties", "user_id": user, "properties": {"b": 2}},
    )
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["ok"], body["failed"]) == (2, 6)
    results = body["results"]
    assert [r["status"] for r in results] == ["ok"] + ["error"] * 6 + ["ok"]
    errors = [(r["error"]["code"], r["error"]["field"]) for r in results[1:7]]
    assert errors == [
        ("invalid_email", "items[1].email"),
        ("unknown_contact", "items[2].user_id"),
        ("missing_field", "items[3].event"),
        ("invalid_choice", "items[4].type"),
        ("invalid_field", "items[5]"),
        ("missing_identity", "items[6].user_id"),
    ]
    contacts = await inspect.contacts(team.project.app_id)
    assert [(c.user_id, c.metadata_) for c in contacts] == [(user, {"b": 2})]


async def test_a_repeated_event_id_is_reported_duplicate_and_stored_once(team, inspect):
    user = unique("u")
    await ok(team, identify(user))
    event = {"type": "track", "user_id": user, "event": "paid", "event_id": "evt_1"}
    first = await ok(team, event, event)
    again = await ok(team, event)
    assert [r["duplicate"] for r in first + again] == [False, True, True]
    assert len(await inspect.events(team.project.app_id, name="paid")) == 1


async def test_an_event_id_from_the_widget_is_the_same_contacts_key(widget, team, inspect):
    user = unique("u")
    assert (
        await widget.identify(team.project, visitor_id=unique("v"), user_id=user)
    ).status_code == 200
    visitor = unique("v")
    await widget.identify(team.project, visitor_id=visitor, user_id=user)
    tracked = await widget.call("track", team.project, visitor, event="paid", event_id="e9")
    assert tracked.json()["duplicate"] is False
    [result] = await ok(team, {"type": "track", "user_id": user, "event": "paid", "event_id": "e9"})
    assert result["duplicate"] is True
    assert len(await inspect.events(team.project.app_id, name="paid")) == 1


async def test_the_same_rules_as_the_widget_apply(new_project, team_for):
    project = await new_project(stage_mode="forward_only", stages=["Lead", "Trial", "Customer"])
    team = await team_for(project)
    user = unique("u")
    answer = await batch(
        team,
        identify(user, company={"id": "acme", "stage": "Trial"}, company_ids=["beta"]),
        {"type": "set_stage", "user_id": user, "stage": "Lead", "company_id": "acme"},
        {"type": "set_stage", "user_id": user, "stage": "Churned", "company_id": "acme"},
        {"type": "set_stage", "user_id": user, "stage": "Customer"},  # two linked, none active
        {"type": "track", "user_id": user, "event": "x", "company_id": "other"},
        identify(user, metadata={"k" * 65: 1}),
        identify(" padded"),
    )
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["ok", "ok"] + ["error"] * 5
    assert [(r["error"]["code"], r["error"]["field"]) for r in results[2:]] == [
        ("unknown_stage", "items[2].stage"),
        ("company_required", "items[3].company_id"),
        ("company_not_linked", "items[4].company_id"),
        ("too_long", f"items[5].metadata.{'k' * 65}"),
        ("invalid_id", "items[6].user_id"),
    ]


async def test_the_team_token_reaches_verified_contacts_and_protected_keys(
    widget, new_project, team_for, inspect
):
    project = await new_project(protected_keys=["plan"])
    team = await team_for(project)
    user = unique("u")
    signed = await widget.identify(
        project, visitor_id=unique("v"), user_id=user, signed=True, company={"id": "acme"}
    )
    assert signed.json()["contact"]["verified"] is True
    results = await ok(
        team,
        identify(user, name="Renamed", metadata={"plan": "enterprise"}),
        {"type": "set_properties", "user_id": user, "properties": {"plan": "pro"}},
        {"type": "set_stage", "user_id": user, "stage": "Customer", "company_id": "acme"},
    )
    assert {r["contact_id"] for r in results} == {signed.json()["contact"]["id"]}
    [contact] = await inspect.contacts(project.app_id)
    assert (contact.name, contact.metadata_, contact.verified) == ("Renamed", {"plan": "pro"}, True)
    [company] = await inspect.companies(project.app_id)
    assert (company.guarded, company.stage) == (True, "Customer")


async def test_a_new_contact_written_by_the_team_is_not_verified_and_the_widget_still_needs_proof(
    widget, team, inspect
):
    user = unique("u")
    await ok(team, identify(user, email=unique_email()))
    [contact] = await inspect.contacts(team.project.app_id)
    assert contact.verified is False
    unsigned = await widget.identify(team.project, visitor_id=unique("v"), user_id=user)
    assert unsigned.status_code == 200  # an unverified contact, as any other


async def test_identify_claims_a_lead_by_email_as_a_signed_identify_would(widget, team, inspect):
    email = unique_email()
    lead = await widget.identify(team.project, visitor_id=unique("v"), email=email)
    user = unique("u")
    [result] = await ok(team, identify(user, email=email))
    assert result["contact_id"] == lead.json()["contact"]["id"]
    [contact] = await inspect.contacts(team.project.app_id)
    assert (contact.user_id, contact.email) == (user, email)


async def test_batch_writes_record_their_changes(team, database):
    user = unique("u")
    await ok(
        team,
        identify(user, company={"id": "acme"}),
        {"type": "set_properties", "user_id": user, "properties": {"a": 1}},
        {"type": "set_properties", "user_id": user, "properties": {"a": 1}},  # changes nothing
    )
    types = [c.type for c in await changes(database, team.project)]
    assert types == [
        "contact.created", "contact.company_linked", "company.created", "contact.updated"
    ]  # fmt: skip


async def test_more_than_a_thousand_items_is_refused_naming_items(team, inspect):
    items = [identify(f"u{i}") for i in range(1001)]
    answer = await batch(team, *items)
    assert answer.status_code == 422
    assert answer.json()["error"]["field"] == "items"
    assert await inspect.contacts(team.project.app_id) == []


async def test_a_batch_may_be_larger_than_other_bodies_up_to_its_own_limit(team, widget):
    user = unique("u")
    filler = {"note": "x" * 900}
    items = [identify(user)] + [
        {"type": "set_properties", "user_id": user, "properties": filler} for _ in range(200)
    ]
    body = json.dumps({"items": items}).encode()
    assert 64 * 1024 < len(body) < 1024 * 1024
    headers = {"Authorization": f"Bearer {team.token}", "Content-Type": "application/json"}
    url = f"/api/projects/{team.project.app_id}/batch"
    answer = await widget.http.post(url, content=body, headers=headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["ok"] == 201
    too_big = b'{"items": [' + b'"' + b"x" * (1024 * 1024) + b'"]}'
    refused = await widget.http.post(url, content=too_big, headers=headers)
    assert refused.status_code == 413
    error = refused.json()["error"]
    assert (error["code"], error["field"]) == ("body_too_large", "body")
    assert str(1024 * 1024) in error["message"]
    # Other routes keep the general limit.
    widget_body = {
        "app_id": team.project.app_id,
        "visitor_id": "v",
        "properties": {"x": "y" * 70_000},
    }
    assert (await widget.post("set-properties", widget_body)).status_code == 413


async def test_the_batch_needs_the_projects_token(team, new_project, database):
    other = await new_project()
    other_token = await make_token(database, other)
    assert (await batch(team, identify("u1"), token="nope")).status_code == 401
    refused = await batch(team, identify("u1"), token=other_token)
    assert refused.status_code == 403


@pytest.mark.parametrize("body", [b"{", b'{"items": 5}', b"[]"])
async def test_a_malformed_batch_body_is_a_4xx(team, widget, body):
    headers = {"Authorization": f"Bearer {team.token}", "Content-Type": "application/json"}
    answer = await widget.http.post(
        f"/api/projects/{team.project.app_id}/batch", content=body, headers=headers
    )
    assert answer.status_code in {400, 422}
    assert answer.json()["error"]["code"]


async def test_a_smaller_configured_batch_limit_is_honoured(database):
    project = await make_project(database)
    token = await make_token(database, project)
    app = create_app(Settings(database_url=database.url, max_batch_bytes=2048), database=database)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hal.test"
    ) as http:
        items = [identify(f"u{i}", name="n" * 100) for i in range(30)]
        answer = await http.post(
            f"/api/projects/{project.app_id}/batch",
            json={"items": items},
            headers={"Authorization": f"Bearer {token}"},
        )
    assert answer.status_code == 413


async def test_identify_under_enforced_verification_needs_no_hash_from_the_team(
    new_project, team_for, inspect
):
    project = await new_project(verification="enforced")
    team = await team_for(project)
    [result] = await ok(team, identify(unique("u"), email=unique_email()))
    [contact] = await inspect.contacts(project.app_id)
    assert (contact.id, contact.verified) == (result["contact_id"], False)


async def test_an_email_owned_by_another_user_is_left_alone_with_a_warning(team, inspect):
    email = unique_email()
    first, second = await ok(
        team, identify(unique("u"), email=email), identify(unique("u"), email=email)
    )
    assert second["warnings"] == ["email_in_use"] and "warnings" not in first
    contacts = await inspect.contacts(team.project.app_id)
    assert [c.email for c in contacts] == [email, None]

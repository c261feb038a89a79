"""README "CRM writes", "Stage modes": CRM writes from the widget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import unique

COMPANY_ROUTES: list[tuple[str, dict[str, Any]]] = [
    ("track", {"event": "seat-added"}),
    ("set-stage", {"stage": "Trial"}),
    ("set-deal", {"deal": {"id": "d1"}}),
]


async def identified(widget, project, **identify_fields):
    visitor = unique("v")
    response = await widget.identify(
        project, visitor_id=visitor, user_id=unique("u"), **identify_fields
    )
    assert response.status_code == 200, response.text
    return visitor


def company_args(route, body):
    return {**body, "scope": "company"} if route == "track" else body


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_an_explicit_linked_company_id_is_used(widget, project, route, body):
    visitor = await identified(widget, project, company={"id": "acme"}, company_ids=["beta"])
    response = await widget.call(route, project, visitor, company_id="beta", **body)
    assert response.status_code == 200, response.text
    company = response.json()["company"] if route != "track" else None
    event = response.json().get("event")
    assert (company or {}).get("id", event and event["company_id"]) == "beta"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_a_company_not_linked_to_the_contact_is_403(widget, project, route, body):
    await identified(widget, project, company={"id": "theirs"})
    visitor = await identified(widget, project, company={"id": "mine"})
    response = await widget.call(route, project, visitor, company_id="theirs", **body)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "company_not_linked"
    assert response.json()["error"]["field"] == "company_id"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_the_active_company_comes_next(widget, project, route, body):
    visitor = await identified(widget, project, company_ids=["beta"], company={"id": "acme"})
    response = await widget.call(route, project, visitor, **company_args(route, body))
    assert response.status_code == 200, response.text
    found = response.json().get("company") or {"id": response.json()["event"]["company_id"]}
    assert found["id"] == "acme"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_the_only_linked_company_is_used_without_an_active_one(widget, project, route, body):
    visitor = await identified(widget, project, company_ids=["solo"])
    response = await widget.call(route, project, visitor, **company_args(route, body))
    assert response.status_code == 200, response.text
    found = response.json().get("company") or {"id": response.json()["event"]["company_id"]}
    assert found["id"] == "solo"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_no_linked_company_is_409(widget, project, route, body):
    visitor = await identified(widget, project)
    response = await widget.call(route, project, visitor, **company_args(route, body))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "no_linked_company"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES)
async def test_several_companies_and_none_active_is_409(widget, project, route, body):
    visitor = await identified(widget, project, company_ids=["a", "b"])
    response = await widget.call(route, project, visitor, **company_args(route, body))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "company_required"


@pytest.mark.parametrize(("route", "body"), COMPANY_ROUTES[1:])
async def test_stage_and_deal_writes_need_an_identified_visitor(widget, project, route, body):
    response = await widget.call(route, project, unique("anon"), **body)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "not_identified"


async def test_track_defaults_to_the_contact_scope(widget, project, inspect):
    visitor = await identified(widget, project, company={"id": "acme"})
    response = await widget.call(
        "track", project, visitor, event="trial-started", properties={"plan": "pro"}
    )
    assert response.status_code == 200, response.text
    event = response.json()["event"]
    assert (event["scope"], event["company_id"], event["properties"]) == (
        "contact",
        None,
        {"plan": "pro"},
    )
    assert response.json()["duplicate"] is False


async def test_track_with_company_id_defaults_to_the_company_scope(widget, project):
    visitor = await identified(widget, project, company={"id": "acme"})
    event = (
        await widget.call("track", project, visitor, event="seat-added", company_id="acme")
    ).json()["event"]
    assert (event["scope"], event["company_id"]) == ("company", "acme")


async def test_track_keeps_occurred_and_received_times(widget, project):
    visitor = await identified(widget, project)
    occurred = "2026-01-02T03:04:05Z"
    event = (await widget.call("track", project, visitor, event="x", occurred_at=occurred)).json()[
        "event"
    ]
    assert datetime.fromisoformat(event["occurred_at"]) == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    received = datetime.fromisoformat(event["received_at"])
    assert abs(received - datetime.now(UTC)) < timedelta(minutes=1)


async def test_track_without_occurred_at_uses_the_server_time(widget, project):
    visitor = await identified(widget, project)
    event = (await widget.call("track", project, visitor, event="x")).json()["event"]
    assert event["occurred_at"] == event["received_at"]


async def test_track_corrects_the_clients_clock_skew(widget, project):
    visitor = await identified(widget, project)
    now = datetime.now(UTC)
    client_clock = now + timedelta(hours=3)  # the browser's clock is 3 hours ahead
    event = (
        await widget.call(
            "track",
            project,
            visitor,
            event="x",
            occurred_at=(client_clock - timedelta(minutes=5)).isoformat(),
            sent_at=client_clock.isoformat(),
        )
    ).json()["event"]
    corrected = datetime.fromisoformat(event["occurred_at"])
    assert abs(corrected - (now - timedelta(minutes=5))) < timedelta(seconds=30)


@pytest.mark.parametrize(
    ("occurred_at", "code"),
    [
        ((datetime.now(UTC) + timedelta(days=2)).isoformat(), "occurred_in_future"),
        ("yesterday", "invalid_datetime"),
    ],
    ids=["in_two_days", "yesterday"],
)
async def test_track_refuses_bad_times(widget, project, occurred_at, code):
    visitor = await identified(widget, project)
    response = await widget.call("track", project, visitor, event="x", occurred_at=occurred_at)
    assert response.status_code == 422
    assert (response.json()["error"]["code"], response.json()["error"]["field"]) == (
        code,
        "occurred_at",
    )


async def test_a_repeated_event_id_stores_nothing_and_says_duplicate(widget, project, inspect):
    visitor = await identified(widget, project)
    first = await widget.call("track", project, visitor, event="paid", event_id="evt-1")
    again = await widget.call(
        "track", project, visitor, event="paid", event_id="evt-1", properties={"x": 1}
    )
    assert again.json()["duplicate"] is True
    assert again.json()["event"] == {"id": first.json()["event"]["id"]}  # the id only
    assert len(await inspect.events(project.app_id, "paid")) == 1


async def test_events_of_an_anonymous_visitor_move_to_the_contact(widget, project, inspect):
    visitor = unique("v")
    anonymous = await widget.call("track", project, visitor, event="pricing-viewed")
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["event"]["contact_id"] is None
    contact = (await widget.identify(project, visitor_id=visitor, user_id="u1")).json()["contact"]
    [event] = await inspect.events(project.app_id, "pricing-viewed")
    assert event.contact_id == contact["id"]


async def test_track_properties_follow_the_metadata_limits(widget, project):
    visitor = await identified(widget, project)
    response = await widget.call("track", project, visitor, event="x", properties={"a": {"b": 1}})
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "properties.a"
    long_name = await widget.call("track", project, visitor, event="e" * 129)
    assert long_name.status_code == 422
    assert long_name.json()["error"]["field"] == "event"


async def test_set_stage_applies_records_history_and_appends_an_event(widget, project, inspect):
    visitor = await identified(widget, project, company={"id": "acme"})
    response = await widget.call("set-stage", project, visitor, stage="Trial")
    assert response.status_code == 200, response.text
    assert response.json()["stage"] == {
        "applied": True,
        "previous": None,
        "stage": "Trial",
        "mode": "overwrite",
        "reason": None,
    }
    assert response.json()["company"]["stage"] == "Trial"
    history = await inspect.stage_history(project.app_id, "acme")
    assert [(h.value, h.previous, h.source) for h in history] == [("Trial", None, "widget")]
    [event] = await inspect.events(project.app_id, "stage-changed")
    assert event.scope == "company" and event.properties["stage"] == "Trial"


async def test_if_empty_skips_a_company_that_has_a_stage(widget, new_project, inspect):
    project = await new_project(stage_mode="if_empty")
    visitor = await identified(widget, project, company={"id": "acme", "stage": "Lead"})
    body = (await widget.call("set-stage", project, visitor, stage="Trial")).json()
    assert body["stage"]["applied"] is False
    assert body["stage"]["reason"] == "stage_already_set"
    assert body["company"]["stage"] == "Lead"
    assert len(await inspect.events(project.app_id, "stage-changed")) == 1  # the first write


async def test_forward_only_never_moves_back_and_refuses_unknown_stages(widget, new_project):
    project = await new_project(
        stage_mode="forward_only", stages=["Lead", "Qualified", "Trial", "Customer"]
    )
    visitor = await identified(widget, project, company={"id": "acme", "stage": "Trial"})
    back = (await widget.call("set-stage", project, visitor, stage="Lead")).json()
    assert (back["stage"]["applied"], back["stage"]["reason"]) == (False, "not_forward")
    forward = (await widget.call("set-stage", project, visitor, stage="Customer")).json()
    assert forward["stage"]["applied"] is True
    unknown = await widget.call("set-stage", project, visitor, stage="Galaxy")
    assert unknown.status_code == 422
    assert unknown.json()["error"]["code"] == "unknown_stage"


async def test_agent_wins_keeps_an_agents_stage(widget, new_project, team_for):
    project = await new_project(stage_mode="agent_wins")
    visitor = await identified(widget, project, company={"id": "acme", "stage": "Lead"})
    team = await team_for(project)
    agent = await team.patch("/companies/acme", {"stage": "Customer"})
    assert agent.status_code == 200, agent.text
    body = (await widget.call("set-stage", project, visitor, stage="Churned")).json()
    assert (body["stage"]["applied"], body["stage"]["reason"]) == (False, "set_by_agent")
    assert body["company"]["stage"] == "Customer"
    override = (
        await widget.call("set-stage", project, visitor, stage="Churned", stage_mode="overwrite")
    ).json()
    assert override["stage"]["applied"] is True


async def test_set_deal_creates_then_updates_with_one_event_per_change(widget, project, inspect):
    visitor = await identified(widget, project, company={"id": "acme"})
    created = await widget.call(
        "set-deal",
        project,
        visitor,
        deal={
            "id": "d1",
            "name": "Enterprise",
            "amount": 50000,
            "currency": "usd",
            "stage": "Proposal",
            "close_date": "2026-12-31",
            "metadata": {"source": "widget"},
        },
    )
    assert created.status_code == 200, created.text
    deal = created.json()["deal"]
    assert (deal["amount"], deal["currency"], deal["status"], deal["close_date"]) == (
        50000.0,
        "USD",
        "open",
        "2026-12-31",
    )
    assert created.json()["created"] is True
    updated = (
        await widget.call(
            "set-deal",
            project,
            visitor,
            deal={"id": "d1", "status": "won", "amount": 52000.5, "metadata": {"source": None}},
        )
    ).json()
    assert updated["created"] is False
    assert sorted(updated["changed"]) == ["amount", "metadata", "status"]
    assert updated["deal"]["name"] == "Enterprise" and updated["deal"]["metadata"] == {}
    same = await widget.call("set-deal", project, visitor, deal={"id": "d1", "status": "won"})
    assert same.json()["changed"] == []
    assert len(await inspect.deals(project.app_id)) == 1
    events = await inspect.events(project.app_id, "deal-updated")
    assert [e.properties["created"] for e in events] == [True, False]


@pytest.mark.parametrize(
    ("deal", "field"),
    [
        ({"id": "d1", "amount": -1}, "deal.amount"),
        ({"id": "d1", "amount": True}, "deal.amount"),
        ({"id": "d1", "currency": "XYZ"}, "deal.currency"),
        ({"id": "d1", "status": "maybe"}, "deal.status"),
        ({"id": "d1", "close_date": "31/12/2026"}, "deal.close_date"),
        ({"id": "null"}, "deal.id"),
        ({"name": "no id"}, "deal.id"),
    ],
)
async def test_set_deal_validates_its_fields(widget, project, inspect, deal, field):
    visitor = await identified(widget, project, company={"id": "acme"})
    response = await widget.call("set-deal", project, visitor, deal=deal)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert await inspect.deals(project.app_id) == []


async def test_crm_writes_of_a_verified_visitor_need_its_session_token(widget, project):
    visitor = unique("v")
    token = (
        await widget.identify(
            project, visitor_id=visitor, user_id="u1", signed=True, company={"id": "acme"}
        )
    ).json()["session_token"]
    for route, body in COMPANY_ROUTES:
        refused = await widget.call(route, project, visitor, **body)
        assert refused.status_code == 401, route
        allowed = await widget.call(route, project, visitor, token=token, **body)
        assert allowed.status_code == 200, (route, allowed.text)

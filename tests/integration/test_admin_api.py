"""The admin API (project settings and secret) and the team's contact writes."""

from __future__ import annotations

import pytest

from hal.domain.verification import compute_user_hash
from tests.factories import make_token, unique
from tests.integration.conftest import TeamClient


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


async def test_settings_need_an_admin_token(team, admin):
    refused = await team.get("/settings")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "admin_token_required"
    shown = await admin.get("/settings")
    assert shown.status_code == 200
    assert shown.json()["identity_verification"] == "enabled"
    assert "identity_secret" not in shown.json()


async def test_an_admin_changes_settings_and_the_widget_follows(admin, widget):
    patched = await admin.patch(
        "/settings", {"stage_mode": "forward_only", "stages": ["Lead", "Customer"]}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["stage_mode"], patched.json()["stages"]) == (
        "forward_only",
        ["Lead", "Customer"],
    )
    visitor = unique("v")
    await widget.identify(admin.project, visitor_id=visitor, user_id="u1", company={"id": "a"})
    unknown = await widget.call("set-stage", admin.project, visitor, stage="Trial")
    assert unknown.json()["error"]["code"] == "unknown_stage"
    bad = await admin.patch("/settings", {"allowed_origins": ["not a url"]})
    assert bad.status_code == 422 and bad.json()["error"]["field"] == "allowed_origins"


async def test_an_admin_rotates_the_secret_with_a_grace_period(admin, widget):
    old_hash = admin.project.hash("u1")
    rotated = await admin.post("/settings/rotate-secret", {"grace_seconds": 3600})
    assert rotated.status_code == 200, rotated.text
    new_hash = compute_user_hash(rotated.json()["identity_secret"], "u1")
    assert (
        await widget.identify(admin.project, user_id="u1", user_hash=old_hash)
    ).status_code == 200
    assert (
        await widget.identify(admin.project, user_id="u1", user_hash=new_hash)
    ).status_code == 200


async def test_the_team_api_may_write_protected_keys(widget, new_project, team_for):
    project = await new_project(protected_keys=["plan"])
    team = await team_for(project)
    contact = (await widget.identify(project, user_id="u1", metadata={"a": 1})).json()["contact"]
    patched = await team.patch(
        f"/contacts/{contact['id']}", {"name": "Ann", "metadata": {"plan": "enterprise", "a": None}}
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["name"], patched.json()["metadata"]) == ("Ann", {"plan": "enterprise"})
    refused = await widget.call("set-properties", project, unique("v"), properties={"plan": "x"})
    assert refused.status_code == 403


async def test_contact_writes_are_validated_and_isolated(team, team_for, new_project, widget):
    other = await new_project()
    foreign = (await widget.identify(other, user_id="u1")).json()["contact"]
    assert (await team.patch(f"/contacts/{foreign['id']}", {"name": "x"})).status_code == 404
    mine = (await widget.identify(team.project, user_id="u1")).json()["contact"]
    nested = await team.patch(f"/contacts/{mine['id']}", {"metadata": {"k": {"deep": 1}}})
    assert nested.status_code == 422
    assert nested.json()["error"]["field"] == "metadata.k"
    unknown_field = await team.patch(f"/contacts/{mine['id']}", {"email": "x@example.com"})
    assert unknown_field.status_code == 422


async def test_an_admin_checks_a_user_hash_without_seeing_the_secret(admin):
    project = admin.project
    right = await admin.post(
        "/settings/check-hash", {"user_id": "u1", "user_hash": project.hash("u1")}
    )
    assert right.status_code == 200, right.text
    assert right.json() == {"valid": True, "signed": "user_id", "secret": "current"}
    assert project.secret not in right.text
    email = "Ann@Example.com"  # signed as the widget sends it
    by_email = await admin.post(
        "/settings/check-hash", {"email": email, "user_hash": project.hash(email)}
    )
    assert by_email.json() == {"valid": True, "signed": "email", "secret": "current"}
    wrong = await admin.post(
        "/settings/check-hash", {"user_id": "u2", "user_hash": project.hash("u1")}
    )
    assert wrong.json() == {"valid": False, "signed": "user_id", "secret": None}


async def test_a_hash_by_the_previous_secret_is_valid_until_the_grace_period_ends(admin):
    old_hash = admin.project.hash("u1")
    await admin.post("/settings/rotate-secret", {"grace_seconds": 3600})
    checked = await admin.post("/settings/check-hash", {"user_id": "u1", "user_hash": old_hash})
    assert checked.json() == {"valid": True, "signed": "user_id", "secret": "previous"}
    await admin.post("/settings/rotate-secret", {"grace_seconds": 0})
    expired = await admin.post("/settings/check-hash", {"user_id": "u1", "user_hash": old_hash})
    assert expired.json() == {"valid": False, "signed": "user_id", "secret": None}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_hash": "ab"}, "user_id"),
        ({"user_id": "u1", "email": "a@example.com", "user_hash": "ab"}, "email"),
        ({"user_id": "u1"}, "user_hash"),
        ({"user_id": "u1", "user_hash": "ab" * 65}, "user_hash"),
        ({"user_id": 7, "user_hash": "ab"}, "user_id"),
    ],
)
async def test_a_hash_check_takes_exactly_one_key_and_names_the_field(admin, body, field):
    refused = await admin.post("/settings/check-hash", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_a_hash_check_needs_an_admin_token(team):
    refused = await team.post("/settings/check-hash", {"user_id": "u1", "user_hash": "ab"})
    assert refused.status_code == 403

"""README "Privacy and data hygiene" through the admin API: erase a person by email or user_id,
the suppression list, and the audit log's filters, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.factories import make_token, unique, unique_email
from tests.integration.conftest import TeamClient


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


async def person(widget, project, **keys) -> int:
    made = await widget.identify(project, **keys)
    assert made.status_code == 200, made.text
    return int(made.json()["contact"]["id"])


async def merge(team, source: int, into: int) -> None:
    merged = await team.post("/contacts/merge", {"from": source, "into": into})
    assert merged.status_code == 200, merged.text


# --- erase by email or user_id ---------------------------------------------------------------


async def test_an_admin_erases_a_person_by_email_and_suppresses_them(widget, team, admin, project):
    user_id, email = unique("u"), unique_email("Sue")
    contact_id = await person(widget, project, user_id=user_id, email=email)
    erased = await admin.post("/erasures", {"email": f" {email.upper()} ", "suppress": True})
    assert erased.status_code == 200, erased.text
    assert erased.json()["id"] == contact_id and erased.json()["erased"] is True
    suppression = erased.json()["suppression"]
    assert len(suppression["user_id_hash"]) == len(suppression["email_hash"]) == 64
    assert user_id not in erased.text and email not in erased.text
    assert (await team.get(f"/contacts/{contact_id}")).status_code == 404
    refused = await widget.identify(project, user_id=user_id)
    assert refused.json()["error"]["code"] == "suppressed"
    [entry] = await audit(admin, action="contact.erased")
    assert (entry["target"], entry["actor"]["type"]) == (str(contact_id), "token")


async def test_an_admin_erases_a_person_by_user_id_without_suppressing(widget, admin, project):
    user_id = unique("u")
    contact_id = await person(widget, project, user_id=user_id)
    erased = await admin.post("/erasures", {"user_id": user_id})
    assert erased.status_code == 200, erased.text
    assert (erased.json()["id"], erased.json()["suppression"]) == (contact_id, None)
    again = await widget.identify(project, user_id=user_id)
    assert again.status_code == 200 and again.json()["contact"]["id"] != contact_id


async def test_an_email_merged_into_a_person_erases_that_person(widget, team, admin, project):
    merged_email = unique_email("old")
    source = await person(widget, project, email=merged_email)
    into = await person(widget, project, user_id=unique("u"), email=unique_email("new"))
    await merge(team, source=source, into=into)
    erased = await admin.post("/erasures", {"email": merged_email, "suppress": True})
    assert erased.status_code == 200, erased.text
    assert erased.json()["id"] == into
    assert (await widget.identify(project, email=merged_email)).status_code == 403


async def test_nobody_with_that_key_is_not_found_naming_the_field(widget, admin, new_project):
    other = await new_project()
    user_id, email = unique("u"), unique_email()
    kept = await person(widget, other, user_id=user_id, email=email)  # another project's
    for key, value in (("email", email), ("user_id", user_id)):
        missing = await admin.post("/erasures", {key: value})
        assert missing.status_code == 404, missing.text
        assert (missing.json()["error"]["code"], missing.json()["error"]["field"]) == (
            "unknown_contact",
            key,
        )
    assert (await widget.identify(other, user_id=user_id)).json()["contact"]["id"] == kept


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({}, "user_id"),
        ({"suppress": True}, "user_id"),
        ({"email": "a@example.com", "user_id": "u1"}, "email"),
        ({"email": "not an email"}, "email"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": "u1", "suppress": "yes"}, "suppress"),
        ({"user_id": "u1", "contact_id": 1}, "contact_id"),
    ],
)
async def test_an_erasure_names_the_field_at_fault(admin, body, field):
    refused = await admin.post("/erasures", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_erasing_by_key_needs_an_admin_token(widget, team, project):
    user_id = unique("u")
    await person(widget, project, user_id=user_id)
    assert (await team.post("/erasures", {"user_id": user_id})).status_code == 403
    assert (await widget.identify(project, user_id=user_id)).status_code == 200


# --- the suppression list --------------------------------------------------------------------


async def test_the_suppression_list_shows_each_person_by_hashes_newest_first(
    widget, team, admin, project
):
    first_email = unique_email("first")
    first = (await admin.post("/erasures", {"email": first_email, "suppress": True})).json()
    assert first["error"]["code"] == "unknown_contact"  # nobody yet
    await person(widget, project, email=first_email)
    first = (await admin.post("/erasures", {"email": first_email, "suppress": True})).json()
    merged_email = unique_email("merged")
    source = await person(widget, project, email=merged_email)
    into = await person(widget, project, user_id=unique("u"), email=unique_email("second"))
    await merge(team, source=source, into=into)
    second = (await admin.post("/erasures", {"email": merged_email, "suppress": True})).json()

    listed = await admin.get("/suppressions")
    assert listed.status_code == 200, listed.text
    newest, older = listed.json()["items"]
    assert (newest["user_id_hash"], newest["email_hash"]) == (
        second["suppression"]["user_id_hash"],
        second["suppression"]["email_hash"],
    )
    assert len(newest["merged_email_hashes"]) == 1
    assert (older["user_id_hash"], older["email_hash"]) == (
        None,
        first["suppression"]["email_hash"],
    )
    assert older["merged_email_hashes"] == [] and older["created_at"]
    assert "@" not in listed.text

    paged = await admin.get("/suppressions", limit=1)
    assert [p["id"] for p in paged.json()["items"]] == [newest["id"]]
    rest = await admin.get("/suppressions", limit=1, cursor=paged.json()["next_cursor"])
    assert [p["id"] for p in rest.json()["items"]] == [older["id"]]
    assert rest.json()["next_cursor"] is None

    # Lifting by the merged email's hash lifts the whole person.
    lifted = await team.http.delete(
        f"/api/projects/{project.app_id}/suppressions/{newest['merged_email_hashes'][0]}",
        headers={"Authorization": f"Bearer {team.token}"},
    )
    assert lifted.status_code == 200, lifted.text
    assert [p["id"] for p in (await admin.get("/suppressions")).json()["items"]] == [older["id"]]


async def test_the_suppression_list_needs_an_admin_token_and_a_cursor_it_gave(team, admin):
    assert (await team.get("/suppressions")).status_code == 403
    assert (await admin.get("/suppressions")).json() == {"items": [], "next_cursor": None}
    bad = await admin.get("/suppressions", cursor="nope")
    assert (bad.status_code, bad.json()["error"]["field"]) == (422, "cursor")
    too_many = await admin.get("/suppressions", limit=1000)
    assert (too_many.status_code, too_many.json()["error"]["field"]) == (422, "limit")


# --- the audit log's filters -----------------------------------------------------------------


async def audit(admin, **params) -> list[dict[str, Any]]:
    answer = await admin.get("/audit", **params)
    assert answer.status_code == 200, answer.text
    items: list[dict[str, Any]] = answer.json()["items"]
    return items


async def test_the_audit_log_filters_by_actor_action_and_time(widget, team, admin, project):
    contact_id = await person(widget, project, user_id=unique("u"))
    await team.patch(f"/contacts/{contact_id}", {"name": "Renamed"})
    made = (await admin.post("/tokens", {"label": "CI"})).json()
    tokens = (await admin.get("/tokens")).json()["items"]
    team_id = next(t["id"] for t in tokens if t["kind"] == "team" and t["id"] != made["id"])
    admin_id = next(t["id"] for t in tokens if t["kind"] == "admin")

    everything = await audit(admin)
    assert [e["action"] for e in everything] == [
        "token.created", "contact.updated", "token.created", "token.created",
    ]  # fmt: skip
    by_team = await audit(admin, actor=f"token:{team_id}")
    assert [e["action"] for e in by_team] == ["contact.updated"]
    assert [e["target"] for e in await audit(admin, actor=f"token:{admin_id}")] == [str(made["id"])]
    assert len(await audit(admin, actor="token")) == 2
    assert len(await audit(admin, actor="cli")) == 2  # the tokens of the fixtures
    assert await audit(admin, actor="agent") == []
    assert await audit(admin, actor="token:999999") == []
    created = await audit(admin, action="token.created")
    assert [e["action"] for e in created] == ["token.created"] * 3
    assert await audit(admin, action="token") == []  # exact, not a prefix
    both = await audit(admin, actor="cli", action="token.created")
    assert len(both) == 2

    now = datetime.now(UTC)
    assert len(await audit(admin, since=(now - timedelta(minutes=5)).isoformat())) == 4
    assert await audit(admin, since=(now + timedelta(minutes=5)).isoformat()) == []
    assert await audit(admin, until=(now - timedelta(minutes=5)).isoformat()) == []
    naive = (now + timedelta(minutes=5)).replace(tzinfo=None).isoformat()  # UTC
    assert len(await audit(admin, until=naive)) == 4
    yesterday, tomorrow = (now - timedelta(days=1)).date(), (now + timedelta(days=1)).date()
    assert len(await audit(admin, since=str(yesterday), until=str(tomorrow))) == 4
    assert await audit(admin, until=str(yesterday)) == []  # through the end of yesterday

    # Filters and the cursor together.
    first = await admin.get("/audit", action="token.created", limit=2)
    second = await admin.get(
        "/audit", action="token.created", limit=2, cursor=first.json()["next_cursor"]
    )
    pages = first.json()["items"] + second.json()["items"]
    assert [e["id"] for e in pages] == [e["id"] for e in created]
    assert second.json()["next_cursor"] is None


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"actor": "root"}, "actor"),
        ({"actor": "cli:3"}, "actor"),
        ({"actor": "token:0"}, "actor"),
        ({"actor": "token:99999999999999999999"}, "actor"),
        ({"action": "x" * 65}, "action"),
        ({"since": "yesterday"}, "since"),
        ({"since": "2026-02-30"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"since": "2026-12-06", "until": "2026-12-05"}, "until"),
    ],
)
async def test_a_bad_audit_filter_names_the_field(admin, params, field):
    refused = await admin.get("/audit", **params)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_the_audit_log_without_filters_is_as_before(admin):
    items = await audit(admin)
    assert json.dumps(items).count("token.created") == 1


async def test_an_erase_deletes_the_failed_import_rows_that_name_the_person(
    widget, team, admin, project
):
    """An import keeps its failed rows as sent (README "Batch writes and imports"): the
    erased person's go with them, the others' stay."""
    from tests.imports import finished

    user_id, email, other = unique("u"), unique_email("Dana"), unique_email("Erin")
    await person(widget, project, user_id=user_id, email=email)
    rows = (
        "User ID,Email Address,Company ID\n"
        f"{user_id},,acme\u200b\n"  # fails (invisible character), names the person by user_id
        f",{email.upper()},acme\u200b\n"  # fails, names the person by email
        f",{other},acme\u200b\n"  # fails, someone else
    )
    answer = await team.http.post(
        f"/api/projects/{project.app_id}/imports?kind=contacts",
        content=rows.encode(),
        headers={"Content-Type": "text/csv", "Authorization": f"Bearer {team.token}"},
    )
    job = await finished(team.http, answer, team.token)
    assert [f["line"] for f in job.json()["failures"]] == [2, 3, 4], job.text

    erased = await admin.post("/erasures", {"email": email})
    assert erased.status_code == 200, erased.text
    after = await team.http.get(
        answer.headers["location"], headers={"Authorization": f"Bearer {team.token}"}
    )
    failures = after.json()["failures"]
    assert [f["line"] for f in failures] == [4], failures
    assert user_id not in after.text and email.lower() not in after.text.lower()
    assert erased.json()["deleted_rows"] >= 2

"""README "Projects and tokens": an admin lists, creates and revokes API tokens through the admin
API, and each token's last use is noted at most once a minute."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from hal.db.engine import Database
from hal.db.models import ApiToken
from hal.db.types import utcnow
from hal.services.projects import hash_api_token
from tests.factories import make_token
from tests.integration.conftest import TeamClient
from tests.integration.test_statement_counts import counting


@pytest.fixture
async def admin(widget, database, project) -> TeamClient:
    return TeamClient(widget.http, project, await make_token(database, project, admin=True))


async def revoke(client: TeamClient, token_id: int, token: str | None = None):
    url = f"/api/projects/{client.project.app_id}/tokens/{token_id}"
    return await client.http.delete(
        url, headers={"Authorization": f"Bearer {token or client.token}"}
    )


async def token_row(database: Database, token: str) -> ApiToken:
    async with database.sessionmaker() as session:
        query = select(ApiToken).where(ApiToken.token_hash == hash_api_token(token))
        row: ApiToken = (await session.execute(query)).scalar_one()
        return row


async def test_an_admin_creates_a_token_shown_once_and_lists_it_without_the_token(admin):
    created = await admin.post("/tokens", {"label": "  CI deploys ", "kind": "team"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    assert token.startswith("hal_")
    assert created.json()["label"] == "CI deploys"
    assert created.json()["prefix"] == token[:8]
    assert (await admin.get("/contacts", token=token)).status_code == 200
    assert (await admin.get("/settings", token=token)).status_code == 403  # a team token

    listed = await admin.get("/tokens")
    assert listed.status_code == 200, listed.text
    assert token not in listed.text and hash_api_token(token) not in listed.text
    newest, own = listed.json()["items"]
    assert newest["id"] == created.json()["id"]
    assert (newest["label"], newest["kind"], newest["revoked_at"]) == ("CI deploys", "team", None)
    assert newest["last_used_at"] is not None  # it made a call above
    assert own["kind"] == "admin" and own["label"] is None


async def test_an_admin_token_made_through_the_api_reaches_the_admin_api(admin):
    created = await admin.post("/tokens", {"kind": "admin"})
    assert created.status_code == 201, created.text
    assert created.json()["label"] is None
    assert (await admin.get("/settings", token=created.json()["token"])).status_code == 200


async def test_a_revoked_token_is_refused_at_once_and_listed_as_revoked(admin):
    created = (await admin.post("/tokens", {"label": "old"})).json()
    revoked = await revoke(admin, created["id"])
    assert revoked.status_code == 204, revoked.text
    refused = await admin.get("/contacts", token=created["token"])
    assert refused.status_code == 401
    [row] = [t for t in (await admin.get("/tokens")).json()["items"] if t["id"] == created["id"]]
    assert row["revoked_at"] is not None
    assert (await revoke(admin, created["id"])).status_code == 204  # again: nothing changes

    audit = (await admin.get("/audit")).json()["items"]
    actions = [(e["action"], e["target"]) for e in audit[:2]]
    assert actions == [("token.revoked", str(created["id"])), ("token.created", str(created["id"]))]
    assert audit[1]["changes"] == {"scope": "team", "label": "old"}
    assert {e["actor"]["type"] for e in audit[:2]} == {"token"}
    assert sum(e["action"] == "token.revoked" for e in audit) == 1


async def test_an_admin_may_revoke_the_token_making_the_call(admin):
    own_id = next(t["id"] for t in (await admin.get("/tokens")).json()["items"])
    assert (await revoke(admin, own_id)).status_code == 204
    assert (await admin.get("/tokens")).status_code == 401


async def test_tokens_need_an_admin_token(team, admin):
    assert (await team.get("/tokens")).json()["error"]["code"] == "admin_token_required"
    assert (await team.post("/tokens", {"label": "x"})).status_code == 403
    tokens = (await admin.get("/tokens")).json()["items"]
    admin_id = next(t["id"] for t in tokens if t["kind"] == "admin")
    assert (await revoke(team, admin_id)).status_code == 403
    assert (await admin.get("/tokens")).status_code == 200  # still valid


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"label": "x" * 256}, "label"),
        ({"label": 5}, "label"),
        ({"kind": "root"}, "kind"),
        ({"label": "x", "scope": "admin"}, "scope"),
    ],
)
async def test_a_bad_token_body_names_the_field(admin, body, field):
    refused = await admin.post("/tokens", body)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["field"] == field


async def test_a_token_of_another_project_or_none_is_not_found(admin, new_project, team_for):
    other = await team_for(await new_project())
    other_id = (await token_row(admin.http._transport.app.state.database, other.token)).id
    for token_id in (other_id, 2**62):
        missing = await revoke(admin, token_id)
        assert missing.status_code == 404, missing.text
        assert missing.json()["error"] | {"message": None} == {
            "code": "unknown_token", "field": "token_id", "message": None
        }  # fmt: skip
    assert (await other.get("/contacts")).status_code == 200
    assert (await revoke(admin, 0)).json()["error"]["field"] == "token_id"


async def test_a_tokens_use_is_noted_at_most_once_a_minute(team, database):
    assert (await token_row(database, team.token)).last_used_at is None
    with counting(database) as first:
        assert (await team.get("/contacts")).status_code == 200
    noted = (await token_row(database, team.token)).last_used_at
    assert noted is not None and utcnow() - noted < timedelta(seconds=10)
    with counting(database) as second:
        assert (await team.get("/contacts")).status_code == 200
    assert (await token_row(database, team.token)).last_used_at == noted
    assert first.count("UPDATE") == second.count("UPDATE") + 1
    assert len(second) == len(first) - 1  # a busy token's check costs no statement more

    async def age(session) -> None:
        earlier = utcnow() - timedelta(seconds=61)
        await session.execute(
            update(ApiToken)
            .where(ApiToken.token_hash == hash_api_token(team.token))
            .values(last_used_at=earlier)
        )

    await database.transaction(age)
    assert (await team.get("/contacts")).status_code == 200
    again = (await token_row(database, team.token)).last_used_at
    assert again is not None and again > noted

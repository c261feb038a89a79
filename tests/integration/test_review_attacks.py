"""What attacking merge and erase found, as the attacker's steps (README "Security"): erase
reaches what a person wrote before an account switch, ids are never handed out again, a merge
keeps the company guard and refuses to join two proofs unasked, a suppression covers merge
aliases, and the audit log forgets an erased person's values. SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select

from hal.app import create_app
from hal.config import Settings
from hal.db.engine import Database
from hal.db.models import AuditEntry, Change, Project, WebhookMessage
from hal.webhooks.delivery import fan_out
from tests.factories import make_token, number_all_changes, unique, unique_email
from tests.integration.conftest import TeamClient


@pytest.fixture(scope="session")
async def private_hooks_http(database) -> AsyncIterator[httpx.AsyncClient]:
    """The app with webhook receivers on loopback allowed (no delivery is made here)."""
    settings = Settings(database_url=database.url, webhooks_allow_private=True)
    transport = httpx.ASGITransport(app=create_app(settings, database=database))
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        yield http


@pytest.fixture
async def admin(private_hooks_http, database, project) -> TeamClient:
    return TeamClient(private_hooks_http, project, await make_token(database, project, admin=True))


async def erase(team: TeamClient, contact_id: int, **params: str) -> httpx.Response:
    url = f"/api/projects/{team.project.app_id}/contacts/{contact_id}"
    return await team.http.delete(
        url, params=params, headers={"Authorization": f"Bearer {team.token}"}
    )


async def merge(team: TeamClient, source: int, into: int, **extra: object) -> httpx.Response:
    return await team.post("/contacts/merge", {"from": source, "into": into, **extra})


async def copies_holding(database: Database, app_id: str, text: str) -> list[str]:
    """Change log rows and webhook messages of the project whose JSON holds `text`."""

    async def read(session) -> list[str]:
        project_id = select(Project.id).where(Project.app_id == app_id).scalar_subquery()
        changes = await session.execute(
            select(Change.type, Change.data).where(Change.project_id == project_id)
        )
        messages = await session.execute(select(WebhookMessage.type, WebhookMessage.payload))
        return [
            f"{kind}: {json.dumps(data)}"
            for kind, data in [*changes, *messages]
            if text in json.dumps(data)
        ]

    return await database.transaction(read)


async def deliver_all(database) -> None:
    """Turn every committed change into webhook messages (the delivery worker's first step)."""
    await number_all_changes(database)
    while await fan_out(database, first_delay=3600):
        pass


# 2. Erase misses what a person wrote before an account switch.


@pytest.mark.parametrize("fan_out_before_identify", [True, False])
async def test_erase_reaches_what_the_person_wrote_before_the_browser_switched_to_someone_else(
    widget, team, admin, project, database, fan_out_before_identify
):
    hook = await admin.post("/webhooks", {"url": "http://127.0.0.1:9/hook", "events": [
        "message.created", "event.tracked"]})  # fmt: skip
    assert hook.status_code == 201, hook.text
    visitor, phone, note = unique("v"), unique("my phone is 555"), unique("private-note")
    said = await widget.call("messages", project, visitor, body=phone)
    assert said.status_code == 200, said.text
    tracked = await widget.call("track", project, visitor, event="pricing", properties={"n": note})
    assert tracked.status_code == 200, tracked.text
    if fan_out_before_identify:
        await deliver_all(database)
    first = await widget.identify(project, visitor_id=visitor, user_id=unique("u_a"))
    assert first.status_code == 200, first.text
    switched = await widget.identify(project, visitor_id=visitor, user_id=unique("u_b"))
    assert switched.status_code == 200, switched.text
    await deliver_all(database)
    assert await copies_holding(database, project.app_id, phone)  # the attacker's target

    erased = await erase(team, first.json()["contact"]["id"], suppress="true")
    assert erased.status_code == 200, erased.text

    assert await copies_holding(database, project.app_id, phone) == []
    assert await copies_holding(database, project.app_id, note) == []
    deliveries = await admin.get(f"/webhooks/{hook.json()['id']}/deliveries")
    assert deliveries.status_code == 200 and phone not in deliveries.text
    replayed = await admin.post(
        f"/webhooks/{hook.json()['id']}/replay", {"since": "2000-01-01T00:00:00Z"}
    )
    assert replayed.status_code in (200, 202), replayed.text
    await deliver_all(database)
    assert await copies_holding(database, project.app_id, phone) == []
    # B, who uses the browser now, keeps what B wrote.
    await widget.call("messages", project, visitor, body="b's own question")
    await deliver_all(database)
    assert await copies_holding(database, project.app_id, "b's own question")
    # Nothing is sent from here: the endpoint and its undelivered messages go.
    gone = await admin.http.delete(
        f"/api/projects/{project.app_id}/webhooks/{hook.json()['id']}",
        headers={"Authorization": f"Bearer {admin.token}"},
    )
    assert gone.status_code == 204


# 3. Ids of deleted and merged rows are never handed out again.


async def test_an_erased_persons_contact_and_conversation_ids_go_to_nobody_else(
    widget, team, project
):
    visitor = unique("v")
    erased_person = await widget.identify(project, visitor_id=visitor, user_id=unique("u"))
    said = await widget.call("messages", project, visitor, body="reset my password")
    old_contact = erased_person.json()["contact"]["id"]
    old_conversation = said.json()["conversation"]["id"]
    assert (await erase(team, old_contact)).status_code == 200

    newcomer = unique("v")
    made = await widget.identify(project, visitor_id=newcomer, user_id=unique("u"))
    asked = await widget.call("messages", project, newcomer, body="your reset code is 9911")
    assert made.json()["contact"]["id"] > old_contact
    assert asked.json()["conversation"]["id"] > old_conversation
    gone = await team.get(f"/contacts/{old_contact}")
    assert gone.status_code == 404
    thread = await team.get(f"/conversations/{old_conversation}")
    assert thread.status_code == 404


async def test_a_merged_away_contact_id_stays_gone_and_names_nobody_new(widget, team, project):
    kept = (await widget.identify(project, user_id=unique("u"))).json()["contact"]["id"]
    lead = (await widget.identify(project, email=unique_email("lead"))).json()["contact"]["id"]
    assert (await merge(team, lead, kept)).status_code == 200

    newcomer = (await widget.identify(project, email=unique_email("new"))).json()["contact"]["id"]
    assert newcomer > lead
    gone = await team.get(f"/contacts/{lead}")
    assert gone.status_code == 410
    assert gone.json()["error"]["merged_into"] == kept
    again = await merge(team, lead, newcomer)
    assert again.status_code == 410, again.text


async def test_erasing_a_merge_target_deletes_only_its_own_change_log_rows(
    widget, team, project, database
):
    kept_visitor = unique("v")
    kept = await widget.identify(project, visitor_id=kept_visitor, user_id=unique("u"))
    lead = await widget.identify(project, email=unique_email("lead"), name="Lead Lee")
    lead_id = lead.json()["contact"]["id"]
    assert (await merge(team, lead_id, kept.json()["contact"]["id"])).status_code == 200
    bystander_name = unique("Bystander")
    await widget.identify(project, email=unique_email("by"), name=bystander_name)
    assert await copies_holding(database, project.app_id, bystander_name)

    assert (await erase(team, kept.json()["contact"]["id"])).status_code == 200
    assert await copies_holding(database, project.app_id, bystander_name)
    assert await copies_holding(database, project.app_id, "Lead Lee") == []


# 4. A merge keeps the company guard.


async def test_a_company_of_a_lead_merged_into_a_verified_contact_is_guarded(widget, team, project):
    company = unique("c1")
    lead = await widget.identify(
        project, email=unique_email("lead"), company={"id": company, "name": "Real Name"}
    )
    assert lead.status_code == 200, lead.text
    owner = await widget.identify(project, user_id=unique("u"), signed=True)
    assert owner.json()["contact"]["verified"] is True
    merged = await merge(team, lead.json()["contact"]["id"], owner.json()["contact"]["id"])
    assert merged.status_code == 200, merged.text

    stranger = unique("v")
    attempt = await widget.identify(
        project,
        visitor_id=stranger,
        email=unique_email("stranger"),
        company={"id": company, "name": "Pwned", "stage": "Churned", "metadata": {"x": 1}},
    )
    assert attempt.status_code == 403, attempt.text
    assert attempt.json()["error"]["code"] == "verification_required"
    linked = await widget.identify(
        project, visitor_id=stranger, email=unique_email("s2"), company_ids=[company]
    )
    assert linked.status_code == 403, linked.text
    shown = (await team.get(f"/companies/{company}")).json()["company"]
    assert shown["name"] == "Real Name" and shown["stage"] is None and shown["metadata"] == {}


# 5. Two contacts verified by different proofs are not merged unasked.


async def test_merging_two_differently_verified_contacts_needs_confirmation_both_ways(
    widget, team, project
):
    attacker = await widget.identify(project, user_id=unique("u_eve"), signed=True)
    victim_email = unique_email("victim")
    victim = await widget.identify(
        project, email=victim_email, metadata={"iban": "DE00 1234"}, signed=True
    )
    assert attacker.json()["contact"]["verified"] and victim.json()["contact"]["verified"]
    eve, vic = attacker.json()["contact"]["id"], victim.json()["contact"]["id"]

    for source, into in ((eve, vic), (vic, eve)):
        refused = await merge(team, source, into)
        assert refused.status_code == 409, refused.text
        assert refused.json()["error"]["code"] == "verified_pair"
        assert refused.json()["error"]["field"] == "confirm_verified_pair"
        preview = await merge(team, source, into, preview=True)
        assert preview.status_code == 200 and preview.json()["verified_pair"] is True

    # Nothing moved: the attacker's own hash still reads only the attacker.
    again = await widget.identify(
        project, user_id=attacker.json()["contact"]["user_id"], signed=True
    )
    assert again.json()["contact"]["id"] == eve
    assert victim_email not in again.text and "DE00" not in again.text

    confirmed = await merge(team, eve, vic, confirm_verified_pair=True)
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["verified_pair"] is True


async def test_a_verified_contact_and_a_lead_merge_without_confirmation(widget, team, project):
    verified = await widget.identify(project, user_id=unique("u"), signed=True)
    lead = await widget.identify(project, email=unique_email("lead"))
    merged = await merge(team, lead.json()["contact"]["id"], verified.json()["contact"]["id"])
    assert merged.status_code == 200, merged.text
    assert merged.json()["verified_pair"] is False


# 6. A suppression covers the person's merge aliases.


async def test_a_suppressed_persons_merge_alias_email_cannot_come_back(widget, team, project):
    main_email, alias_email = unique_email("main"), unique_email("alias")
    person = await widget.identify(project, user_id=unique("u"), email=main_email)
    lead = await widget.identify(project, email=alias_email)
    person_id = person.json()["contact"]["id"]
    assert (await merge(team, lead.json()["contact"]["id"], person_id)).status_code == 200
    reached = await widget.identify(project, email=alias_email)
    assert reached.json()["contact"]["id"] == person_id  # the alias reaches the person

    erased = await erase(team, person_id, suppress="true")
    assert erased.status_code == 200, erased.text
    for email in (alias_email, alias_email.upper(), main_email):
        back = await widget.identify(project, email=email)
        assert back.status_code == 403, (email, back.text)
        assert back.json()["error"]["code"] == "suppressed"

    lifted = await team.http.delete(
        f"/api/projects/{project.app_id}/suppressions/{erased.json()['suppression']['email_hash']}",
        headers={"Authorization": f"Bearer {team.token}"},
    )
    assert lifted.status_code == 200, lifted.text
    assert (await widget.identify(project, email=alias_email)).status_code == 200


# 12. The audit log keeps ids, actions and field names of an erased person, not their values.


async def test_the_audit_log_forgets_an_erased_persons_values(widget, team, project, database):
    lead = await widget.identify(project, email=unique_email("lead"))
    person = await widget.identify(project, user_id=unique("u"), name="Olga Original")
    person_id, lead_id = person.json()["contact"]["id"], lead.json()["contact"]["id"]
    renamed = await team.patch(
        f"/contacts/{lead_id}", {"name": "Lead Secret", "metadata": {"diagnosis": "flu"}}
    )
    assert renamed.status_code == 200, renamed.text
    assert (await merge(team, lead_id, person_id)).status_code == 200
    edited = await team.patch(
        f"/contacts/{person_id}", {"name": "Olga Renamed", "metadata": {"salary": "99k"}}
    )
    assert edited.status_code == 200, edited.text
    assert (await erase(team, person_id)).status_code == 200

    async def entries(session) -> list[AuditEntry]:
        project_id = select(Project.id).where(Project.app_id == project.app_id).scalar_subquery()
        rows = await session.execute(select(AuditEntry).where(AuditEntry.project_id == project_id))
        return list(rows.scalars())

    log = await database.transaction(entries)
    text = json.dumps([entry.changes for entry in log])
    for value in ("Olga", "Lead Secret", "flu", "99k"):
        assert value not in text, value
    updates = [e for e in log if e.action == "contact.updated"]
    assert {e.target for e in updates} == {str(person_id), str(lead_id)}
    assert all("name" in e.changes and set(e.changes.values()) == {None} for e in updates)
    assert [e.action for e in log].count("contact.erased") == 1

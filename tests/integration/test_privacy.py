"""README "Privacy and data hygiene": suppression, export, merge, retention and the audit log,
through the team API on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select, update
from typer.testing import CliRunner

from hal.app import create_app
from hal.cli import app as cli_app
from hal.config import Settings
from hal.db.models import Conversation, Event, Project, WebhookAttempt, WebhookMessage
from hal.db.types import utcnow
from hal.services.retention import purge
from tests.factories import make_token, number_all_changes, unique, unique_email
from tests.imports import finished
from tests.integration.conftest import TeamClient


@pytest.fixture(scope="session")
async def admin_http(database) -> AsyncIterator[httpx.AsyncClient]:
    """The app as a developer runs it: webhook receivers on loopback are allowed."""
    settings = Settings(database_url=database.url, webhooks_allow_private=True)
    app = create_app(settings, database=database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://hal.test") as http:
        yield http


@pytest.fixture
async def admin(admin_http, database, project) -> TeamClient:
    return TeamClient(admin_http, project, await make_token(database, project, admin=True))


async def erase(team, contact_id, **params):
    url = f"/api/projects/{team.project.app_id}/contacts/{contact_id}"
    headers = {"Authorization": f"Bearer {team.token}"}
    return await team.http.delete(url, params=params, headers=headers)


async def test_a_suppressed_person_may_not_identify_again_by_user_id_or_any_form_of_email(
    widget, team, project
):
    user_id, email = unique("u"), unique_email("Sue")
    made = await widget.identify(project, user_id=user_id, email=email)
    erased = await erase(team, made.json()["contact"]["id"], suppress="true")
    assert erased.status_code == 200, erased.text
    suppression = erased.json()["suppression"]
    assert len(suppression["user_id_hash"]) == len(suppression["email_hash"]) == 64
    assert user_id not in erased.text and email not in erased.text

    local, domain = email.split("@")
    for attempt in (
        {"user_id": user_id},
        {"email": email},
        {"email": email.upper()},
        {"email": f"  {local.swapcase()}@{domain.upper()}  "},
        {"user_id": unique("other"), "email": f"\t{email.title()} "},
    ):
        refused = await widget.identify(project, **attempt)
        assert refused.status_code == 403, (attempt, refused.text)
        assert refused.json()["error"]["code"] == "suppressed"
        assert refused.json()["error"]["field"] in {"user_id", "email"}
    assert (await widget.identify(project, user_id=unique("someone"))).status_code == 200

    lifted = await team.http.delete(
        f"/api/projects/{project.app_id}/suppressions/{suppression['email_hash']}",
        headers={"Authorization": f"Bearer {team.token}"},
    )
    assert lifted.status_code == 200, lifted.text
    back = await widget.identify(project, user_id=user_id, email=email.upper())
    assert back.status_code == 200, back.text
    assert back.json()["contact"]["id"] != made.json()["contact"]["id"]


async def test_a_suppressed_person_may_not_be_written_by_a_batch_or_an_import(
    widget, team, project
):
    user_id, email = unique("u"), unique_email("Sam")
    made = await widget.identify(project, user_id=user_id, email=email)
    erased = await erase(team, made.json()["contact"]["id"], suppress="true")
    assert erased.status_code == 200, erased.text
    items = [
        {"type": "identify", "user_id": user_id},
        {"type": "identify", "email": f" {email.upper()} "},
        {"type": "set_properties", "email": email.title(), "properties": {"x": 1}},
        {"type": "track", "user_id": user_id, "event": "came_back"},
    ]
    batch = await team.post("/batch", {"items": items})
    assert batch.status_code == 200, batch.text
    results = batch.json()["results"]
    assert [r["error"]["code"] for r in results] == ["suppressed"] * len(items)
    imported = await team.http.post(
        f"/api/projects/{project.app_id}/imports",
        params={"kind": "contacts"},
        content=f"user_id,email\n{user_id},\n,{email.upper()}\n".encode(),
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": "text/csv"},
    )
    imported = await finished(team.http, imported, team.token)
    assert imported.status_code == 200, imported.text
    assert imported.json()["failed"] == 2 and imported.json()["created"] == 0


async def test_a_suppression_of_one_project_does_not_hold_in_another(widget, team, new_project):
    other = await new_project()
    email = unique_email("p")
    made = await widget.identify(team.project, email=email)
    await erase(team, made.json()["contact"]["id"], suppress="true")
    assert (await widget.identify(other, email=email)).status_code == 200


async def test_lifting_an_unknown_or_malformed_hash_names_the_field(team):
    url = f"/api/projects/{team.project.app_id}/suppressions/"
    headers = {"Authorization": f"Bearer {team.token}"}
    unknown = await team.http.delete(url + "0" * 64, headers=headers)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "hash"
    malformed = await team.http.delete(url + "xyz", headers=headers)
    assert malformed.status_code == 422
    assert malformed.json()["error"]["field"] == "hash"


async def test_an_erased_contact_is_not_found_and_cannot_be_erased_twice(widget, team, project):
    made = await widget.identify(project, user_id=unique("u"))
    contact_id = made.json()["contact"]["id"]
    assert (await erase(team, contact_id)).status_code == 200
    assert (await team.get(f"/contacts/{contact_id}")).status_code == 404
    again = await erase(team, contact_id)
    assert again.status_code == 404
    assert again.json()["error"]["field"] == "contact_id"


async def test_the_export_holds_everything_about_the_person(widget, team, project):
    visitor, email = unique("v"), unique_email("ex")
    await widget.set_properties(project, visitor, {"plan_seen": "gold"})
    made = await widget.identify(
        project,
        visitor_id=visitor,
        user_id=unique("u"),
        email=email,
        metadata={"shoe": 44},
        company={"id": "acme-ex", "name": "Acme"},
    )
    await widget.call("track", project, visitor, event="opened", properties={"page": "/x"})
    await widget.call("messages", project, visitor, body="hello from export")
    contact_id = made.json()["contact"]["id"]
    exported = await team.get(f"/contacts/{contact_id}/export")
    assert exported.status_code == 200, exported.text
    document = exported.json()
    assert document["contact"]["email"] == email
    assert document["contact"]["metadata"]["shoe"] == 44
    assert document["contact"]["metadata"]["plan_seen"] == "gold"
    assert [v["visitor_id"] for v in document["visitors"]] == [visitor]
    assert document["visitors"][0]["active_company_id"] == "acme-ex"
    assert [c["id"] for c in document["companies"]] == ["acme-ex"]
    assert [e["name"] for e in document["events"]] == ["opened"]
    assert document["events"][0]["properties"] == {"page": "/x"}
    [conversation] = document["conversations"]
    assert [m["body"] for m in conversation["messages"]] == ["hello from export"]
    assert (await team.get("/contacts/999999999/export")).status_code == 404


# --- merge ---------------------------------------------------------------------------------


async def merge(team, **body):
    body = {("from" if k == "source" else k): v for k, v in body.items()}
    return await team.post("/contacts/merge", body)


async def test_merge_moves_everything_and_fills_blanks_from_the_other(widget, team, project):
    lead_visitor, user_visitor = unique("v"), unique("v")
    lead_email = unique_email("lead")
    lead = await widget.identify(
        project,
        visitor_id=lead_visitor,
        email=lead_email,
        name="Lead Name",
        metadata={"plan": "free", "source": "ads"},
        company={"id": "lead-co"},
    )
    await widget.call("track", project, lead_visitor, event="lead-event")
    await widget.call("messages", project, lead_visitor, body="lead talks")
    user = await widget.identify(
        project, visitor_id=user_visitor, user_id=unique("u"), metadata={"plan": "pro"}
    )
    source, into = lead.json()["contact"]["id"], user.json()["contact"]["id"]

    preview = await merge(team, source=source, into=into, preview=True)
    assert preview.status_code == 200, preview.text
    assert preview.json()["moves"] == {
        "visitors": 1,
        "events": 1,
        "conversations": 1,
        "companies": 1,
    }
    assert preview.json()["contact"]["email"] == lead_email
    assert (await team.get(f"/contacts/{source}")).status_code == 200  # nothing written yet

    merged = await merge(team, source=source, into=into)
    assert merged.status_code == 200, merged.text
    contact = merged.json()["contact"]
    assert contact["id"] == into
    assert contact["email"] == lead_email  # a blank filled from `from`
    assert contact["name"] == "Lead Name"
    assert contact["metadata"] == {"plan": "pro", "source": "ads"}  # into's own value wins

    gone = await team.get(f"/contacts/{source}")
    assert gone.status_code == 410
    assert gone.json()["error"]["merged_into"] == into
    detail = (await team.get(f"/contacts/{into}")).json()
    assert [c["id"] for c in detail["companies"]] == ["lead-co"]
    assert [e["name"] for e in detail["events"]] == ["lead-event"]
    assert len(detail["conversations"]) == 1
    # Later identifies by from's keys or its visitors reach `into`.
    by_email = await widget.identify(project, email=lead_email)
    assert by_email.json()["contact"]["id"] == into
    by_visitor = await widget.call("track", project, lead_visitor, event="after")
    assert by_visitor.json()["event"]["contact_id"] == into


async def test_merge_keeps_from_email_as_a_way_to_reach_into(widget, team, project):
    first, second = unique_email("a"), unique_email("b")
    source = (await widget.identify(project, email=first)).json()["contact"]["id"]
    into = (await widget.identify(project, email=second)).json()["contact"]["id"]
    merged = await merge(team, source=source, into=into)
    assert merged.json()["contact"]["email"] == second
    again = await widget.identify(project, email=first.upper())
    assert again.status_code == 200, again.text
    assert again.json()["contact"]["id"] == into


async def test_merge_refuses_two_user_ids_and_unknown_or_same_contacts(widget, team, project):
    one = (await widget.identify(project, user_id=unique("u"))).json()["contact"]["id"]
    two = (await widget.identify(project, user_id=unique("u"))).json()["contact"]["id"]
    refused = await merge(team, source=one, into=two)
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "conflicting_user_ids"
    assert (await team.get(f"/contacts/{one}")).status_code == 200
    unknown = await merge(team, source=one, into=999_999_999)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "into"
    same = await merge(team, source=one, into=one)
    assert same.status_code == 409
    bad = await team.post("/contacts/merge", {"from": "x", "into": two})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "from"


async def test_merge_records_contact_merged_and_into_updated(widget, team, project, database):
    source = (await widget.identify(project, email=unique_email("m"))).json()["contact"]["id"]
    into = (await widget.identify(project, user_id=unique("u"))).json()["contact"]["id"]
    await merge(team, source=source, into=into)
    from sqlalchemy import select

    from hal.db.models import Change

    async def changes(session):
        project_row = await session.scalar(select(Project).where(Project.app_id == project.app_id))
        rows = await session.execute(
            select(Change.type, Change.data)
            .where(Change.project_id == project_row.id)
            .order_by(Change.id.desc())
            .limit(2)
        )
        return list(rows)

    await number_all_changes(database)
    updated, merged = await database.transaction(changes)
    assert merged.type == "contact.merged"
    assert merged.data == {"from": source, "into": into}
    assert updated.type == "contact.updated"
    assert updated.data["id"] == into
    assert "email" in updated.data["changed"]


# --- audit log -----------------------------------------------------------------------------


async def test_the_audit_log_records_each_kind_of_write_newest_first(widget, team, admin, project):
    visitor = unique("v")
    made = await widget.identify(
        project, visitor_id=visitor, user_id=unique("u"), company={"id": "au"}
    )
    contact_id = made.json()["contact"]["id"]
    await team.patch(f"/contacts/{contact_id}", {"name": "Renamed", "metadata": {"k": "v"}})
    await team.patch("/companies/au", {"stage": "Customer"})
    other = (await widget.identify(project, email=unique_email("o"))).json()["contact"]["id"]
    await merge(team, source=other, into=contact_id)
    erased = await erase(team, contact_id, suppress="true")
    await team.http.delete(
        f"/api/projects/{project.app_id}/suppressions/{erased.json()['suppression']['user_id_hash']}",
        headers={"Authorization": f"Bearer {team.token}"},
    )
    await admin.patch("/settings", {"stage_mode": "forward_only", "event_retention_days": 30})
    await admin.post("/settings/rotate-secret", {"grace_seconds": 60})
    hook = await admin.post("/webhooks", {"url": "http://127.0.0.1:9/hook"})
    await admin.post(f"/webhooks/{hook.json()['id']}/rotate-secret")
    await admin.http.delete(
        f"/api/projects/{project.app_id}/webhooks/{hook.json()['id']}",
        headers={"Authorization": f"Bearer {admin.token}"},
    )

    refused = await team.get("/audit")
    assert refused.status_code == 403  # a team token may not read it
    first = await admin.get("/audit", limit=5)
    assert first.status_code == 200, first.text
    second = await admin.get("/audit", cursor=first.json()["next_cursor"], limit=200)
    entries = first.json()["items"] + second.json()["items"]
    actions = [e["action"] for e in entries]
    assert actions == [
        "webhook.deleted",
        "webhook.secret_rotated",
        "webhook.created",
        "project.secret_rotated",
        "project.updated",
        "suppression.lifted",
        "contact.erased",
        "contact.merged",
        "company.stage_set",
        "contact.updated",
        "token.created",  # the admin token, by `hal tokens create` (the command line)
        "token.created",
    ]
    assert entries[-1]["actor"] == {"type": "cli", "id": None}
    assert entries[-1]["changes"] == {"scope": "team"}
    assert [e["id"] for e in entries] == sorted((e["id"] for e in entries), reverse=True)
    by_action = {e["action"]: e for e in entries}
    # The contact was erased since: the entry keeps which fields changed, not their values.
    assert "name" in by_action["contact.updated"]["changes"]
    assert set(by_action["contact.updated"]["changes"].values()) == {None}
    assert "Renamed" not in json.dumps(entries)
    assert by_action["contact.updated"]["actor"]["type"] == "token"
    assert by_action["project.updated"]["changes"]["stage_mode"]["new"] == "forward_only"
    assert by_action["company.stage_set"]["changes"]["stage"]["new"] == "Customer"
    everything = json.dumps(entries)
    assert "whsec_" not in everything  # secrets are named, never shown
    assert by_action["webhook.secret_rotated"]["changes"] == {"secret": "[secret]"}


# --- retention -----------------------------------------------------------------------------


async def _age(database, model, column, ids, days):
    async def work(session):
        await session.execute(
            update(model).where(model.id.in_(ids)).values({column: utcnow() - timedelta(days=days)})
        )

    await database.transaction(work)


async def test_retention_deletes_only_what_is_old(widget, admin, project, database, inspect):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id=unique("u"))
    old = await widget.call("track", project, visitor, event="old")
    new = await widget.call("track", project, visitor, event="new")
    await _age(database, Event, "received_at", [old.json()["event"]["id"]], days=40)
    closed_old = (await widget.call("messages", project, unique("v"), body="old")).json()
    closed_new = (await widget.call("messages", project, unique("v"), body="new")).json()
    open_old = (await widget.call("messages", project, unique("v"), body="open")).json()
    for thread in (closed_old, closed_new):
        await admin.post(f"/conversations/{thread['conversation']['id']}/close")
    await _age(
        database,
        Conversation,
        "last_message_at",
        [closed_old["conversation"]["id"], open_old["conversation"]["id"]],
        days=40,
    )

    await purge(database)  # no retention set: nothing goes
    assert {e.name for e in await inspect.events(project.app_id)} == {"old", "new"}

    settings = await admin.patch(
        "/settings", {"event_retention_days": 30, "conversation_retention_days": 30}
    )
    assert settings.json()["event_retention_days"] == 30
    counts = await purge(database)
    assert counts.events >= 1
    assert [e.name for e in await inspect.events(project.app_id)] == ["new"]
    assert new.status_code == 200
    gone = await admin.get(f"/conversations/{closed_old['conversation']['id']}")
    assert gone.status_code == 404
    for kept in (closed_new, open_old):
        assert (await admin.get(f"/conversations/{kept['conversation']['id']}")).status_code == 200

    unset = await admin.patch("/settings", {"event_retention_days": 0})
    assert unset.json()["event_retention_days"] is None
    bad = await admin.patch("/settings", {"conversation_retention_days": -1})
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "conversation_retention_days"


async def test_the_delivery_log_keeps_messages_for_its_retention_only(project, database):
    from tests.integration.test_webhook_delivery import drop_endpoint, endpoint_for

    endpoint = await endpoint_for(database, project, "http://127.0.0.1:9/hooks")
    ages = {"old-delivered": 40, "old-failed": 31, "recent": 29}

    async def add(session):
        for name, days in ages.items():
            status = "failed" if name == "old-failed" else "delivered"
            message = WebhookMessage(
                endpoint_id=endpoint.id, type=name, payload={"type": name}, status=status,
                created_at=utcnow() - timedelta(days=days),
            )  # fmt: skip
            session.add(message)
            await session.flush()
            session.add(WebhookAttempt(message_id=message.id, status_code=200, duration_ms=1))

    async def left(session):
        kept = await session.execute(
            select(WebhookMessage.type).where(WebhookMessage.endpoint_id == endpoint.id)
        )
        attempts = await session.execute(
            select(func.count()).select_from(WebhookAttempt).join(WebhookMessage)
            .where(WebhookMessage.endpoint_id == endpoint.id)
        )  # fmt: skip
        return sorted(kept.scalars()), attempts.scalar_one()

    try:
        await database.transaction(add)
        assert (await purge(database)).webhook_messages == 0  # no retention given: all kept
        counts = await purge(database, webhook_log=timedelta(days=30), batch=1)
        assert counts.webhook_messages == 2
        assert await database.transaction(left) == (["recent"], 1)
    finally:
        await drop_endpoint(database, endpoint.id)


# --- command line --------------------------------------------------------------------------


def test_hal_contacts_erase_by_email_user_id_or_id_and_hal_purge(tmp_path):
    runner = CliRunner()
    db = f"sqlite:///{tmp_path / 'cli.db'}"
    assert runner.invoke(cli_app, ["migrate", "--database-url", db]).exit_code == 0

    def hal(*args: str, ok: bool = True):
        result = runner.invoke(cli_app, [*args, "--database-url", db])
        if ok:
            assert result.exit_code == 0, result.output
            return json.loads(result.stdout)
        return result

    hal("projects", "create", "--app-id", "p1", "--event-retention-days", "30")
    shown = hal("projects", "update", "p1", "--conversation-retention-days", "7")
    assert shown["event_retention_days"] == 30
    assert shown["conversation_retention_days"] == 7
    import asyncio

    from hal.db.engine import Database
    from hal.domain.limits import Limits
    from hal.schemas import IdentifyRequest
    from hal.services.identify import identify
    from hal.services.widget_call import Caller

    async def identify_one(**fields):
        database = Database(db)
        try:
            request = IdentifyRequest(app_id="p1", visitor_id=unique("v"), **fields)
            result = await database.run(
                lambda tx: identify(
                    tx,
                    request=request,
                    caller=Caller(),
                    limits=Limits(),
                    session_ttl=timedelta(hours=1),
                )
            )
            return result.contact.id
        finally:
            await database.dispose()

    by_email = asyncio.run(identify_one(email="Cli.User@Example.com"))
    by_user = asyncio.run(identify_one(user_id="cli-user"))
    by_id = asyncio.run(identify_one(user_id="cli-other"))
    assert (
        hal("contacts", "erase", "--app-id", "p1", "--email", " cli.user@example.COM ")["erased"]
        == by_email
    )
    erased = hal("contacts", "erase", "--app-id", "p1", "--user-id", "cli-user", "--suppress")
    assert erased["erased"] == by_user and erased["suppression"]["user_id_hash"]
    assert hal("contacts", "erase", "--app-id", "p1", "--contact-id", str(by_id))["erased"] == by_id
    missing = hal("contacts", "erase", "--app-id", "p1", "--user-id", "cli-user", ok=False)
    assert missing.exit_code == 1
    assert hal("purge") == {
        "events": 0, "conversations": 0, "messages": 0, "webhook_messages": 0,
        "erasures_finished": 0,
    }  # fmt: skip


async def test_erasing_a_contact_also_erases_what_the_log_holds_of_contacts_merged_into_it(
    widget, team, project, database
):
    lead_email, lead_secret = unique_email("merged-lead"), unique("lead-secret")
    lead = await widget.identify(project, email=lead_email, metadata={"s": lead_secret})
    into = await widget.identify(project, user_id=unique("u"), email=unique_email("keeps"))
    into_id = into.json()["contact"]["id"]
    await merge(team, source=lead.json()["contact"]["id"], into=into_id)
    assert (await erase(team, into_id)).status_code == 200

    from sqlalchemy import select

    from hal.db.models import Change

    async def log(session):
        project_id = await session.scalar(
            select(Project.id).where(Project.app_id == project.app_id)
        )
        rows = await session.execute(select(Change.data).where(Change.project_id == project_id))
        return json.dumps([row.data for row in rows])

    held = await database.transaction(log)
    assert lead_email not in held and lead_secret not in held
    assert (await widget.identify(project, email=lead_email)).json()["contact"]["id"] != into_id


async def test_an_erasure_cut_short_is_finished_by_the_purge(widget, team, project, database):
    from hal.db.queries import project_by_app_id
    from hal.services.audit import CLI
    from hal.services.erasure import start_erasure

    visitor, email = unique("v"), unique_email("cut")
    made = await widget.identify(project, visitor_id=visitor, email=email)
    await widget.call("track", project, visitor, event="seen")
    contact_id = made.json()["contact"]["id"]

    async def start(tx):
        row = await project_by_app_id(tx.orm, project.app_id)
        assert row is not None
        return await start_erasure(
            tx, project=row, contact_id=contact_id, suppress=False, actor=CLI
        )

    await database.run(start)  # the process "dies" before deleting the rows
    assert (await team.get(f"/contacts/{contact_id}")).status_code == 404
    assert email not in (await team.get("/contacts")).text
    again = await widget.identify(project, visitor_id=visitor, email=email)
    assert again.json()["contact"]["id"] != contact_id  # unreachable: a new person

    counts = await purge(database)
    assert counts.erasures_finished >= 1
    events = await team.get("/events", contact_id=contact_id)
    assert events.json()["items"] == []


async def test_an_agents_write_in_the_inbox_is_audited_as_that_agent(
    widget, admin, project, database
):
    import re

    from hal.services.agents import create_agent

    email, password = unique_email("agent"), "long enough pw"
    agent = await database.transaction(
        lambda s: create_agent(session=s, app_id=project.app_id, email=email, password=password)
    )
    await widget.identify(project, user_id=unique("u"), company={"id": "inbox-co"})
    async with httpx.AsyncClient(
        transport=widget.http._transport, base_url="http://hal.test"
    ) as browser:
        login = await browser.post("/inbox/login", data={"email": email, "password": password})
        assert login.status_code == 303
        page = await browser.get("/inbox/companies/inbox-co")
        found = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert found is not None
        csrf = found.group(1)
        staged = await browser.post(
            "/inbox/companies/inbox-co/stage", data={"stage": "Trial", "csrf_token": csrf}
        )
        assert staged.status_code == 303
    [entry] = [e for e in (await admin.get("/audit")).json()["items"] if e["target"] == "inbox-co"]
    assert entry["action"] == "company.stage_set"
    assert entry["actor"] == {"type": "agent", "id": agent.id}

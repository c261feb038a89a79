"""README "Privacy and data hygiene", erase: after `DELETE /contacts/{id}` no route, inbox page,
export, stream replay or webhook delivery log holds anything of the person. Against a real
`hal serve` (its stream, its webhook delivery) on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from hal.db.models import Change, Contact, Event, Message, Visitor, WebhookMessage
from hal.services.agents import create_agent
from tests.factories import make_project, make_token, unique, unique_email
from tests.receiver import running_receiver
from tests.servers import running_server
from tests.sse import events

pytestmark = pytest.mark.server

WAIT = 15
PASSWORD = "long enough pw"
SERVER_ENV = {
    "HAL_WEBHOOKS_ALLOW_PRIVATE": "true",
    "HAL_WEBHOOK_RETRY_SCHEDULE": "0,0.2",
    "HAL_WEBHOOK_POLL_SECONDS": "0.05",
}


async def replay(http: httpx.AsyncClient, app_id: str, token: str) -> str:
    """Everything a stream replays from the start (Last-Event-ID 0), until it goes quiet."""
    seen: list[str] = []
    headers = {"Authorization": f"Bearer {token}", "Last-Event-ID": "0"}
    async with http.stream("GET", f"/api/projects/{app_id}/stream", headers=headers) as response:
        assert response.status_code == 200
        source = events(response)
        with contextlib.suppress(TimeoutError, StopAsyncIteration):
            while True:
                event = await asyncio.wait_for(anext(source), 1.0)
                seen.append(f"{event.event} {event.data}")
    return "\n".join(seen)


async def everything_seen(
    http: httpx.AsyncClient,
    app_id: str,
    token: str,
    admin: str,
    ids: dict[str, Any],
    inbox: httpx.AsyncClient,
) -> str:
    """The text of every answer that could show the person."""
    auth = {"Authorization": f"Bearer {token}"}
    base = f"/api/projects/{app_id}"
    answers = [
        await http.get(f"{base}/contacts", headers=auth),
        await http.get(f"{base}/contacts", params={"q": ids["email"][:6]}, headers=auth),
        await http.get(f"{base}/contacts/{ids['contact']}", headers=auth),
        await http.get(f"{base}/contacts/{ids['contact']}/export", headers=auth),
        await http.get(f"{base}/conversations", headers=auth),
        await http.get(f"{base}/conversations/{ids['conversation']}", headers=auth),
        await http.get(f"{base}/events", headers=auth),
        await http.get(f"{base}/companies/acme", headers=auth),
        await http.get(
            f"{base}/webhooks/{ids['endpoint']}/deliveries",
            headers={"Authorization": f"Bearer {admin}"},
        ),
        await inbox.get("/inbox"),
        await inbox.get(f"/inbox/contacts/{ids['contact']}"),
        await inbox.get(f"/inbox/conversations/{ids['conversation']}"),
        await inbox.get("/inbox/conversations.json"),
        await inbox.get("/inbox/companies/acme"),
        await http.get(
            "/api/widget/messages",
            params={"app_id": app_id, "visitor_id": ids["visitor"]},
        ),
    ]
    for answer in answers:
        assert answer.status_code < 500, answer.text
    return "\n".join(a.text for a in answers) + "\n" + await replay(http, app_id, token)


async def test_after_an_erase_nothing_of_the_person_is_left(database, database_url):
    project = await make_project(database, verification="disabled")
    token = await make_token(database, project)
    admin = await make_token(database, project, admin=True)
    agent = unique_email("agent")
    await database.transaction(
        lambda s: create_agent(session=s, app_id=project.app_id, email=agent, password=PASSWORD)
    )
    email, secret, body = unique_email("erin"), unique("favourite-colour"), unique("my-ssn-is")
    anonymous_body = unique("before-identify")
    visitor = unique("v")
    with running_receiver() as receiver, running_server(database_url, env=SERVER_ENV) as url:
        async with (
            httpx.AsyncClient(base_url=url, timeout=WAIT) as http,
            httpx.AsyncClient(base_url=url, timeout=WAIT) as inbox,
        ):
            endpoint = await http.post(
                f"/api/projects/{project.app_id}/webhooks",
                json={"url": receiver.url, "events": []},
                headers={"Authorization": f"Bearer {admin}"},
            )
            assert endpoint.status_code == 201, endpoint.text
            widget = {"app_id": project.app_id, "visitor_id": visitor}
            first = await http.post("/api/widget/messages", json={**widget, "body": anonymous_body})
            assert first.status_code == 200, first.text
            identified = await http.post(
                "/api/widget/identify",
                json={
                    **widget,
                    "user_id": unique("u"),
                    "email": email,
                    "name": "Erin Erased",
                    "metadata": {"secret": secret},
                    "company": {"id": "acme", "name": "Acme"},
                },
            )
            assert identified.status_code == 200, identified.text
            contact_id = identified.json()["contact"]["id"]
            for n in range(30):
                tracked = await http.post(
                    "/api/widget/track",
                    json={**widget, "event": "viewed", "properties": {"note": secret, "n": n}},
                )
                assert tracked.status_code == 200, tracked.text
            said = await http.post("/api/widget/messages", json={**widget, "body": body})
            conversation_id = said.json()["conversation"]["id"]
            reply = await http.post(
                f"/api/projects/{project.app_id}/conversations/{conversation_id}/messages",
                json={"body": f"re: {body}"},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert reply.status_code == 200, reply.text
            await receiver.wait_for(5)
            login = await inbox.post("/inbox/login", data={"email": agent, "password": PASSWORD})
            assert login.status_code == 303, login.text
            ids = {
                "contact": contact_id,
                "conversation": conversation_id,
                "endpoint": endpoint.json()["id"],
                "visitor": visitor,
                "email": email,
            }

            before = await everything_seen(http, project.app_id, token, admin, ids, inbox)
            for value in (email, secret, body, anonymous_body):
                assert value in before  # the search below can find the person

            erased = await http.delete(
                f"/api/projects/{project.app_id}/contacts/{contact_id}",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert erased.status_code == 200, erased.text
            assert erased.json()["erased"] is True
            assert erased.json()["suppression"] is None

            after = await everything_seen(http, project.app_id, token, admin, ids, inbox)
            for value in (email, secret, body, anonymous_body, "Erin Erased"):
                assert value not in after, value
            deleted = re.search(r"^contact\.deleted (.*)$", after, re.MULTILINE)
            assert deleted is not None, after[-500:]
            assert json.loads(deleted.group(1))["data"] == {"id": contact_id}  # ids only
            company = await http.get(
                f"/api/projects/{project.app_id}/companies/acme",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert company.status_code == 200  # companies stay

    async def held(session) -> dict[str, int]:
        count = func.count()
        return {
            "contacts": await session.scalar(select(count).where(Contact.id == contact_id)),
            "events": await session.scalar(select(count).where(Event.contact_id == contact_id)),
            "visitors": await session.scalar(select(count).where(Visitor.visitor_key == visitor)),
            "messages": await session.scalar(
                select(count).where(Message.conversation_id == conversation_id)
            ),
            "changes": await session.scalar(select(count).where(Change.contact_id == contact_id)),
            "webhook_messages": await session.scalar(
                select(count).where(WebhookMessage.contact_id == contact_id)
            ),
        }

    assert await database.transaction(held) == dict.fromkeys(
        ["contacts", "events", "visitors", "messages", "changes", "webhook_messages"], 0
    )
    delivered = json.dumps([r.document for r in receiver.requests])
    assert email in delivered  # what was sent before the erase was sent; nothing is kept

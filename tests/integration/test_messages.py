"""README "Widget messages": conversations attached to contacts and companies."""

from __future__ import annotations

from tests.factories import unique


async def send(widget, project, visitor, body, token=None):
    return await widget.call("messages", project, visitor, token=token, body=body)


async def read(widget, project, visitor, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return await widget.http.get(
        "/api/widget/messages",
        params={"app_id": project.app_id, "visitor_id": visitor},
        headers=headers,
    )


async def test_a_first_message_opens_a_conversation_and_later_ones_append(widget, project):
    visitor = unique("v")
    first = await send(widget, project, visitor, "Hello?")
    assert first.status_code == 200, first.text
    second = await send(widget, project, visitor, "Anyone there?")
    assert second.json()["conversation"]["id"] == first.json()["conversation"]["id"]
    thread = (await read(widget, project, visitor)).json()["conversation"]
    assert [m["body"] for m in thread["messages"]] == ["Hello?", "Anyone there?"]
    assert all(m["author"] == "visitor" for m in thread["messages"])


async def test_messages_attach_to_the_contact_and_active_company(widget, project, team):
    visitor = unique("v")
    await widget.identify(
        project,
        visitor_id=visitor,
        user_id="u1",
        name="Ann",
        email="ann@acme.com",
        company={"id": "acme", "name": "Acme", "stage": "Trial"},
    )
    await send(widget, project, visitor, "Help with billing")
    [summary] = (await team.get("/conversations")).json()["items"]
    assert summary["contact"]["name"] == "Ann"
    assert summary["contact"]["email"] == "ann@acme.com"
    assert summary["company"] == {"id": "acme", "name": "Acme", "stage": "Trial"}
    assert summary["last_message"]["body"] == "Help with billing"


async def test_an_anonymous_conversation_is_attached_at_identify(widget, project, team):
    visitor = unique("v")
    await send(widget, project, visitor, "Pre-sales question")
    contact = (await widget.identify(project, visitor_id=visitor, user_id="u1")).json()["contact"]
    [summary] = (await team.get("/conversations")).json()["items"]
    assert summary["contact"]["id"] == contact["id"]


async def test_an_unverified_visitor_reads_only_its_own_conversations(widget, project):
    mine, other = unique("v"), unique("v")
    await widget.identify(project, visitor_id=mine, user_id="u1")
    await widget.identify(project, visitor_id=other, user_id="u1")
    await send(widget, project, other, "written on another device")
    await send(widget, project, mine, "mine")
    body = (await read(widget, project, mine)).json()
    assert [m["body"] for c in body["conversations"] for m in c["messages"]] == ["mine"]


async def test_a_verified_visitor_reads_all_of_its_contacts_conversations(widget, project):
    phone, laptop = unique("v"), unique("v")
    await widget.identify(project, visitor_id=phone, user_id="u1", signed=True)
    laptop_token = (
        await widget.identify(project, visitor_id=laptop, user_id="u1", signed=True)
    ).json()["session_token"]
    phone_token = (
        await widget.identify(project, visitor_id=phone, user_id="u1", signed=True)
    ).json()["session_token"]
    await send(widget, project, phone, "from my phone", token=phone_token)
    await send(widget, project, laptop, "from my laptop", token=laptop_token)
    body = (await read(widget, project, laptop, token=laptop_token)).json()
    assert body["conversation"]["messages"][0]["body"] == "from my laptop"
    assert len(body["conversations"]) == 2
    assert (await read(widget, project, laptop)).status_code == 401  # token required


async def test_each_message_records_whether_its_sender_was_verified(widget, project):
    verified, unverified = unique("v"), unique("v")
    token = (await widget.identify(project, visitor_id=verified, user_id="u1", signed=True)).json()[
        "session_token"
    ]
    await widget.identify(project, visitor_id=unverified, user_id="u2")
    signed = await send(widget, project, verified, "hi", token=token)
    unsigned = await send(widget, project, unverified, "hi")
    assert signed.json()["message"]["sender_verified"] is True
    assert unsigned.json()["message"]["sender_verified"] is False


async def test_agent_replies_reach_the_widget(widget, project, team):
    visitor = unique("v")
    conversation = (await send(widget, project, visitor, "Question")).json()["conversation"]
    reply = await team.post(f"/conversations/{conversation['id']}/messages", {"body": "Answer"})
    assert reply.status_code == 200, reply.text
    messages = (await read(widget, project, visitor)).json()["conversation"]["messages"]
    assert [(m["author"], m["body"]) for m in messages] == [
        ("visitor", "Question"),
        ("agent", "Answer"),
    ]


async def test_a_closed_conversation_is_followed_by_a_new_one(widget, project, team):
    visitor = unique("v")
    first = (await send(widget, project, visitor, "one")).json()["conversation"]["id"]
    closed = await team.post(f"/conversations/{first}/close")
    assert closed.json()["conversation"]["status"] == "closed"
    second = (await send(widget, project, visitor, "two")).json()["conversation"]["id"]
    assert second != first
    reopened = await team.post(f"/conversations/{first}/reopen")
    assert reopened.json()["conversation"]["status"] == "open"


async def test_long_and_empty_messages(widget, project):
    visitor = unique("v")
    long = "x" * 5000
    assert (await send(widget, project, visitor, long)).json()["message"]["body"] == long
    empty = await send(widget, project, visitor, "   ")
    assert empty.status_code == 422
    assert empty.json()["error"]["field"] == "body"


async def test_reading_an_unknown_visitor_answers_nothing_and_creates_nothing(
    widget, project, inspect
):
    body = (await read(widget, project, "never-seen")).json()
    assert body == {"conversation": None, "conversations": []}
    assert await inspect.visitor(project.app_id, "never-seen") is None

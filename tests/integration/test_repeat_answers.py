"""README "Identify", the repeat identify answered again (services/repeat_answers.py): the same
call gets the same bytes from one read, and anything that would change the answer (a write by
another route, the project's settings, the token's freshness, an erasure) sends the call down
the usual path, which answers what it answers today."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from hal.domain.sessions import issue_session_token
from hal.services.projects import get_project
from tests.factories import identify_payload, make_project, make_token, unique
from tests.integration.conftest import TeamClient
from tests.integration.test_statement_counts import REPEAT_IDENTIFY, WRITES, counting
from tests.servers import Server


def _body(user_id: str) -> dict[str, Any]:
    return {"visitor_id": f"v-{user_id}", "user_id": user_id, "name": "Ada",
            "email": f"{user_id}@example.com", "metadata": {"plan": "pro"},
            "company": {"id": f"co-{user_id}", "name": "Acme"}, "signed": True}  # fmt: skip


async def _kept(widget, project, user_id: str) -> tuple[dict[str, Any], str, httpx.Response]:
    """A signed-in user's identify, then its repeat, whose answer is kept."""
    first = await widget.identify(project, **_body(user_id))
    assert first.status_code == 200, first.text
    token = first.json()["session_token"]
    repeat = await widget.identify(project, token=token, **_body(user_id))
    assert repeat.status_code == 200, repeat.text
    return _body(user_id), token, repeat


async def test_the_same_call_again_gets_the_same_bytes_from_one_read(widget, project, database):
    body, token, repeat = await _kept(widget, project, unique("u"))
    answers = widget.app.state.repeat_answers
    sent = answers.sent
    with counting(database) as statements:
        again = await widget.identify(project, token=token, **body)
    assert again.status_code == 200, again.text
    assert again.content == repeat.content
    assert again.headers["content-type"] == "application/json"
    assert answers.sent == sent + 1
    assert 1 <= len(statements) <= REPEAT_IDENTIFY, statements
    assert not any(statement in WRITES for statement in statements), statements


async def test_a_write_by_another_route_is_in_the_next_answer(widget, project, database):
    team = TeamClient(widget.http, project, await make_token(database, project))
    user_id = unique("u")
    body, token, repeat = await _kept(widget, project, user_id)
    contact_id = repeat.json()["contact"]["id"]

    noted = await team.patch(f"/contacts/{contact_id}", {"metadata": {"tier": "gold"}})
    assert noted.status_code == 200, noted.text
    answer = await widget.identify(project, token=token, **body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["contact"]["metadata"]["tier"] == "gold"

    again = await widget.identify(project, token=token, **body)  # kept again, with the name
    staged = await team.patch(f"/companies/co-{user_id}", {"stage": "Customer"})
    assert staged.status_code == 200, staged.text
    answer = await widget.identify(project, token=token, **body)
    assert answer.content != again.content
    assert answer.json()["active_company"]["stage"] == "Customer"

    moved = await widget.call("set-properties", project, body["visitor_id"], token=token,
                              properties={"seats": 3})  # fmt: skip
    assert moved.status_code == 200, moved.text
    answer = await widget.identify(project, token=token, **body)
    assert answer.json()["contact"]["metadata"]["seats"] == 3


async def test_a_change_of_settings_is_in_the_next_answer(widget, project, database):
    admin = TeamClient(widget.http, project, await make_token(database, project, admin=True))
    body, token, _ = await _kept(widget, project, unique("u"))
    origin = {"Origin": "https://app.example.com"}
    payload = identify_payload(project, **body)
    headers = {"Authorization": f"Bearer {token}", **origin}
    allowed = await admin.patch("/settings", {"allowed_origins": ["https://app.example.com"]})
    assert allowed.status_code == 200, allowed.text
    assert (await widget.http.post("/api/widget/identify", json=payload,
                                   headers=headers)).status_code == 200  # fmt: skip
    kept = await widget.http.post("/api/widget/identify", json=payload, headers=headers)
    assert kept.status_code == 200, kept.text

    closed = await admin.patch("/settings", {"allowed_origins": ["https://other.example.com"]})
    assert closed.status_code == 200, closed.text
    refused = await widget.http.post("/api/widget/identify", json=payload, headers=headers)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["code"] == "origin_not_allowed"


async def test_an_erased_contact_is_not_answered_again(widget, project, database):
    team = TeamClient(widget.http, project, await make_token(database, project))
    body, token, repeat = await _kept(widget, project, unique("u"))
    contact = f"/api/projects/{project.app_id}/contacts/{repeat.json()['contact']['id']}"
    erased = await widget.http.delete(contact, headers={"Authorization": f"Bearer {team.token}"})
    assert erased.status_code == 200, erased.text
    answer = await widget.identify(project, token=token, **body)
    assert answer.content != repeat.content
    if answer.status_code == 200:  # identified afresh: a new contact
        assert answer.json()["contact"]["id"] != repeat.json()["contact"]["id"]


async def test_a_token_that_stops_being_fresh_gets_a_new_one(widget, project, database):
    """A kept answer carries the caller's own token only while at least half its lifetime is
    left (README "Identify"): from then on, each answer brings a new one."""
    user_id = unique("u")
    first = await widget.identify(project, **_body(user_id))
    stored = await database.transaction(lambda s: get_project(session=s, app_id=project.app_id))
    ttl = timedelta(seconds=widget.app.state.settings.session_token_ttl_seconds)
    soon_stale = issue_session_token(  # fresh for about two more seconds
        secret=stored.session_secret, app_id=project.app_id, visitor_id=f"v-{user_id}",
        contact_id=first.json()["contact"]["id"], ttl=ttl,
        now=datetime.now(UTC) - ttl / 2 + timedelta(seconds=2),
    )  # fmt: skip
    repeat = await widget.identify(project, token=soon_stale, **_body(user_id))
    again = await widget.identify(project, token=soon_stale, **_body(user_id))
    assert repeat.json()["session_token"] == again.json()["session_token"] == soon_stale
    await asyncio.sleep(3)
    later = await widget.identify(project, token=soon_stale, **_body(user_id))
    assert later.status_code == 200, later.text
    assert later.json()["session_token"] != soon_stale


async def test_answers_sent_again_count_against_the_rate_limits(database, project):
    from tests.integration.test_rate_limits import client_for

    async with client_for(database, widget_rate_per_visitor="4/minute") as http:
        user_id = unique("u")
        payload = identify_payload(project, **_body(user_id))
        first = await http.post("/api/widget/identify", json=payload)
        headers = {"Authorization": f"Bearer {first.json()['session_token']}"}
        statuses = [
            (await http.post("/api/widget/identify", json=payload, headers=headers)).status_code
            for _ in range(4)
        ]
    assert statuses == [200, 200, 200, 429]


async def test_the_settings_cache_keeps_its_object_while_the_project_is_unchanged(
    database, project
):
    from hal.db.project_cache import ProjectCache

    clock = [0.0]
    cache = ProjectCache(clock=lambda: clock[0])

    async def read(tx):
        return await cache.get(tx.connection, project.app_id)

    first = await database.run(read)
    clock[0] += 10  # long past max_age: read again
    assert await database.run(read) is first
    from hal.services.projects import ProjectSettings, update_project

    changes = ProjectSettings(name=unique("renamed"), stages=["Lead", "Won"])
    await database.transaction(
        lambda s: update_project(session=s, app_id=project.app_id, settings=changes)
    )
    clock[0] += 10
    changed = await database.run(read)
    assert changed is not first
    assert changed is not None and first is not None and changed.stages != first.stages


@pytest.mark.server
async def test_a_write_through_another_process_is_in_the_next_answer(
    database_url, database, artifacts_dir
):
    """Each `hal serve` process keeps its own answers; the read they are checked with sees what
    any process wrote."""
    project = await make_project(database)
    log = artifacts_dir / "server-repeat-answers.log"
    first, second = Server(database_url, log=log).start(), Server(database_url, log=log).start()
    body = identify_payload(project, **_body(unique("u")))
    try:
        async with httpx.AsyncClient(timeout=30) as http:
            identified = await http.post(f"{first.url}/api/widget/identify", json=body)
            assert identified.status_code == 200, identified.text
            headers = {"Authorization": f"Bearer {identified.json()['session_token']}"}
            answers = [
                await http.post(f"{first.url}/api/widget/identify", json=body, headers=headers)
                for _ in range(3)  # the repeat, then its answer sent again
            ]
            assert answers[1].content == answers[2].content
            moved = await http.post(f"{second.url}/api/widget/set-properties", headers=headers,
                                    json={"app_id": project.app_id,
                                          "visitor_id": body["visitor_id"],
                                          "properties": {"seats": 7}})  # fmt: skip
            assert moved.status_code == 200, moved.text
            after = await http.post(f"{first.url}/api/widget/identify", json=body, headers=headers)
    finally:
        first.stop()
        second.stop()
    assert after.status_code == 200, after.text
    assert after.json()["contact"]["metadata"]["seats"] == 7


async def test_a_kept_answer_opens_nothing_to_another_caller(widget, project):
    """Attacked: once a user's answer is kept, a thief holding its own session token, an
    unsigned body, another visitor_id or a guessed company id gets what the usual path gives
    them (here, a refusal), never the kept bytes."""
    user_id = unique("u")
    body, token, kept = await _kept(widget, project, user_id)
    again = await widget.identify(project, token=token, **body)
    assert again.content == kept.content
    thief = await widget.identify(project, visitor_id=unique("thief"), user_id=unique("t"))
    thief_token = thief.json()["session_token"]
    unsigned = {**body, "signed": False}
    attempts = {
        "the user's unsigned body, the thief's token": (unsigned, thief_token),
        "the user's unsigned body, no token": (unsigned, None),
        "another visitor_id, the user's token": ({**unsigned, "visitor_id": unique("v")}, token),
        "a guessed company id, the user's token, unsigned": (
            {**unsigned, "company": {"id": f"co-{unique('x')}"}}, thief_token),
    }  # fmt: skip
    for what, (fields, bearer) in attempts.items():
        answer = await widget.identify(project, token=bearer, **fields)
        assert answer.content != kept.content, what
        assert answer.status_code in (401, 403), (what, answer.status_code, answer.text)

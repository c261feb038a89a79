"""The holes found by attacking the widget from outside, as the attacker's steps (README "Who may
read and write what"). Each test failed before the rules existed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt

from hal.domain.projects import CompanyClaims
from hal.services.projects import ProjectSettings, update_project
from tests.factories import unique, unique_email


async def read_messages(widget, project, visitor_id, token=None):
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"app_id": project.app_id, "visitor_id": visitor_id}
    return await widget.http.get("/api/widget/messages", params=params, headers=headers)


def bodies(answer) -> list[str]:
    return [m["body"] for c in answer.json()["conversations"] for m in c["messages"]]


def identity_token(project, **claims) -> str:
    claims["exp"] = datetime.now(UTC) + timedelta(minutes=5)
    return jwt.encode(claims, project.secret, algorithm="HS256")


# 1. Session takeover by re-binding.


async def test_a_hash_for_ones_own_user_id_cannot_take_over_a_verified_visitor(widget, project):
    victim = unique("u_victim")
    signed_in = await widget.identify(project, visitor_id=victim, user_id=victim, signed=True)
    victim_token = signed_in.json()["session_token"]
    await widget.call("messages", project, victim, victim_token, body="my invoice is overdue")

    eve = unique("u_eve")
    takeover = await widget.identify(project, visitor_id=victim, user_id=eve, signed=True)
    assert takeover.status_code == 403
    assert takeover.json()["error"]["code"] == "visitor_in_use"
    assert "session_token" not in takeover.json()

    own = await read_messages(widget, project, victim, victim_token)
    assert own.status_code == 200 and bodies(own) == ["my invoice is overdue"]
    assert (await read_messages(widget, project, victim)).status_code == 401
    posted = await widget.call("messages", project, victim, body="from eve")
    assert posted.status_code == 401
    assert bodies(await read_messages(widget, project, victim, victim_token)) == [
        "my invoice is overdue"
    ]


async def test_after_an_account_switch_the_visitor_reads_nothing_of_the_previous_contact(
    widget, project
):
    visitor, first, second = unique("v"), unique("u"), unique("u")
    token = (await widget.identify(project, visitor_id=visitor, user_id=first, signed=True)).json()[
        "session_token"
    ]
    await widget.call("messages", project, visitor, token, body="first user's question")
    switched = await widget.identify(
        project, visitor_id=visitor, user_id=second, signed=True, token=token
    )
    assert switched.status_code == 200
    answer = await read_messages(widget, project, visitor, switched.json()["session_token"])
    assert answer.status_code == 200 and bodies(answer) == []
    await widget.call(
        "messages", project, visitor, switched.json()["session_token"], body="second user"
    )
    again = await read_messages(widget, project, visitor, switched.json()["session_token"])
    assert bodies(again) == ["second user"]


# 2. Lead claim through an unsigned step.


async def test_an_unsigned_lead_claim_does_not_verify_the_email_or_open_the_leads_chat(
    widget, project, team
):
    lead_email = unique_email("lead")
    lead_visitor = unique("v")
    await widget.identify(project, visitor_id=lead_visitor, email=lead_email)
    await widget.call("messages", project, lead_visitor, body="lead's private question")

    eve, eve_visitor = unique("u_eve"), unique("v")
    claimed = await widget.identify(project, visitor_id=eve_visitor, user_id=eve, email=lead_email)
    assert claimed.status_code == 200
    verified = await widget.identify(project, visitor_id=eve_visitor, user_id=eve, signed=True)
    assert verified.status_code == 200
    contact = verified.json()["contact"]
    assert contact["verified"] is True and contact["email_verified"] is False

    answer = await read_messages(widget, project, eve_visitor, verified.json()["session_token"])
    assert answer.status_code == 200
    assert "lead's private question" not in bodies(answer)
    shown = (await team.get(f"/contacts/{contact['id']}")).json()
    assert shown["contact"]["email_verified"] is False


async def test_a_proof_over_the_email_verifies_it(widget, project):
    email = unique_email()
    body = (await widget.identify(project, email=email, signed=True)).json()
    assert body["contact"]["verified"] is True and body["contact"]["email_verified"] is True
    token = identity_token(project, user_id=unique("u"), email=unique_email())
    signed = (await widget.identify(project, identity_token=token)).json()
    assert signed["contact"]["email_verified"] is True


async def test_a_verified_visitor_reads_its_contacts_verified_conversations_only(widget, project):
    user = unique("u")
    phone, laptop = unique("v"), unique("v")
    phone_token = (
        await widget.identify(project, visitor_id=phone, user_id=user, signed=True)
    ).json()["session_token"]
    await widget.call("messages", project, phone, phone_token, body="from my phone")
    laptop_token = (
        await widget.identify(project, visitor_id=laptop, user_id=user, signed=True)
    ).json()["session_token"]
    assert "from my phone" in bodies(await read_messages(widget, project, laptop, laptop_token))


# 3. Companies are open.


async def _bigcorp(widget, project, team):
    """A verified customer of BigCorp with a private deal; returns the company id."""
    company = unique("bigcorp")
    owner = unique("u")
    signed = await widget.identify(
        project,
        visitor_id=owner,
        user_id=owner,
        signed=True,
        company={"id": company, "name": "BigCorp", "stage": "Customer",
                 "metadata": {"secret_note": "renewal at risk"}},
    )  # fmt: skip
    token = signed.json()["session_token"]
    deal = await widget.call(
        "set-deal", project, owner, token, deal={"id": "big-1", "amount": 250000, "currency": "USD"}
    )
    assert deal.status_code == 200, deal.text
    return company


async def test_an_unverified_visitor_cannot_link_read_or_write_a_guarded_company(
    widget, project, team
):
    company = await _bigcorp(widget, project, team)
    attacker = unique("v")
    await widget.identify(project, visitor_id=attacker, user_id=unique("u_eve"))

    for fields in (
        {"company_ids": [company]},
        {"company": {"id": company}},
        {"company": {"id": company, "name": "HACKED", "stage": "Churned"}},
    ):
        refused = await widget.identify(
            project, visitor_id=attacker, user_id=unique("u_eve"), **fields
        )
        assert refused.status_code == 403, fields
        assert refused.json()["error"]["code"] == "verification_required"
        assert "250000" not in refused.text and "renewal" not in refused.text

    deal = await widget.call(
        "set-deal", project, attacker, company_id=company, deal={"id": "big-1", "amount": 1}
    )
    assert deal.status_code == 403
    stage = await widget.call("set-stage", project, attacker, company_id=company, stage="Lead")
    assert stage.status_code == 403

    shown = (await team.get(f"/companies/{company}")).json()
    assert shown["company"]["name"] == "BigCorp" and shown["company"]["stage"] == "Customer"
    assert [d["amount"] for d in shown["deals"]] == [250000]


async def test_a_company_guarded_after_an_unverified_link_is_no_longer_open_to_it(
    widget, project, team
):
    company = unique("acme")
    attacker = unique("v")
    linked = await widget.identify(
        project, visitor_id=attacker, user_id=unique("u_eve"), company={"id": company}
    )
    assert linked.status_code == 200
    customer = unique("u")
    await widget.identify(
        project, visitor_id=customer, user_id=customer, signed=True,
        company={"id": company, "name": "Acme", "metadata": {"arr": 987654321}},
    )  # fmt: skip

    again = await widget.call("set-properties", project, attacker, properties={"x": 1})
    assert again.status_code == 200
    deal = await widget.call("set-deal", project, attacker, deal={"id": "d", "amount": 5})
    assert deal.status_code == 403
    track = await widget.call("track", project, attacker, event="poke", scope="company")
    assert track.status_code == 403
    answer = await widget.identify(project, visitor_id=attacker, user_id=unique("u_eve"))
    assert answer.status_code == 200
    assert "987654321" not in answer.text and "Acme" not in answer.text


async def test_signed_company_claims_link_only_companies_the_token_names(
    widget, new_project, database
):
    project = await new_project()
    await database.transaction(
        lambda s: update_project(
            session=s,
            app_id=project.app_id,
            settings=ProjectSettings(company_claims=CompanyClaims.SIGNED),
        )
    )
    user, visitor = unique("u"), unique("v")
    hashed = await widget.identify(
        project, visitor_id=visitor, user_id=user, signed=True, company={"id": "acme"}
    )
    assert hashed.status_code == 403
    token = identity_token(project, user_id=user, company_ids=["acme"])
    named = await widget.identify(
        project, visitor_id=visitor, identity_token=token, company={"id": "acme"}
    )
    assert named.status_code == 200, named.text
    other = await widget.identify(
        project, visitor_id=visitor, identity_token=token, company_ids=["globex"]
    )
    assert other.status_code == 403
    stage = await widget.call(
        "set-stage", project, visitor, named.json()["session_token"], stage="Trial"
    )
    assert stage.status_code == 200, stage.text


# 4. event_id is project-wide.


async def test_another_visitors_event_id_is_neither_returned_nor_blocking(widget, project, inspect):
    alice, mallory = unique("v"), unique("v")
    await widget.identify(project, visitor_id=alice, user_id=unique("u"))
    await widget.identify(project, visitor_id=mallory, user_id=unique("u"))
    first = await widget.call(
        "track",
        project,
        alice,
        event="paid",
        event_id="evt-1",
        properties={"card": "card-of-alice"},
    )
    stolen = await widget.call("track", project, mallory, event="poke", event_id="evt-1")
    assert stolen.status_code == 200
    assert stolen.json()["duplicate"] is False
    assert "card-of-alice" not in stolen.text
    assert stolen.json()["event"]["id"] != first.json()["event"]["id"]
    assert [e.name for e in await inspect.events(project.app_id)] == ["paid", "poke"]


async def test_an_event_id_tracked_anonymously_stays_the_callers_after_identify(
    widget, project, inspect
):
    visitor = unique("v")
    await widget.call("track", project, visitor, event="signup-started", event_id="e-1")
    await widget.identify(project, visitor_id=visitor, user_id=unique("u"))
    again = await widget.call("track", project, visitor, event="signup-started", event_id="e-1")
    assert again.json()["duplicate"] is True
    assert len(await inspect.events(project.app_id, "signup-started")) == 1


# 6. Smaller holes.


async def test_identifiers_with_surrounding_whitespace_are_refused(widget, project):
    victim = unique("u_victim")
    await widget.identify(project, user_id=victim)
    for fields in (
        {"user_id": f"{victim} "},
        {"user_id": victim, "company": {"id": " acme"}},
        {"user_id": victim, "company_ids": ["acme\t"]},
        {"user_id": victim, "visitor_id": " v1"},
        {"user_id": victim, "company": {"id": ".."}},
    ):
        response = await widget.identify(project, **fields)
        assert response.status_code == 422, fields
        assert response.json()["error"]["field"] in {
            "user_id", "company.id", "company_ids[0]", "visitor_id"
        }  # fmt: skip


async def test_a_full_width_letter_does_not_make_a_look_alike_email(widget, project, inspect):
    email = f"{unique('victim')}@x.com"
    first = (await widget.identify(project, email=email)).json()["contact"]
    look_alike = email.replace("@x.com", "@\uff58.com")  # FULLWIDTH LATIN SMALL LETTER X
    second = (await widget.identify(project, email=look_alike)).json()["contact"]
    assert second["id"] == first["id"]
    assert len(await inspect.contacts(project.app_id)) == 1


async def test_a_refused_link_to_a_guarded_company_leaves_no_link_behind(
    widget, project, team, inspect
):
    """identify links its companies before it checks them (one statement on PostgreSQL): a
    refusal must take the link back with the rest of the call."""
    company = await _bigcorp(widget, project, team)
    attacker, user_id = unique("v"), unique("u_eve")
    await widget.identify(project, visitor_id=attacker, user_id=user_id)
    before = await inspect.links(project.app_id)
    for fields in ({"company": {"id": company}}, {"company_ids": [company, unique("co")]}):
        refused = await widget.identify(project, visitor_id=attacker, user_id=user_id, **fields)
        assert refused.status_code == 403, fields
    assert await inspect.links(project.app_id) == before
    assert [c.external_id for c in await inspect.companies(project.app_id)] == [company]

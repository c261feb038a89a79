"""README "Identify": matching, merging, carry-over and companies."""

from __future__ import annotations

from tests.factories import unique, unique_email


async def test_identify_creates_a_contact_with_user_id_and_email(widget, project, inspect):
    email = unique_email("alice")
    response = await widget.identify(project, user_id="u1", email=email, name="Alice")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["contact"]["user_id"] == "u1"
    assert body["contact"]["email"] == email
    assert body["contact"]["name"] == "Alice"
    assert body["contact"]["verified"] is False
    assert body["session_token"]
    assert body["warnings"] == []
    assert [c.user_id for c in await inspect.contacts(project.app_id)] == ["u1"]


async def test_identify_matches_a_returning_user_by_user_id(widget, project, inspect):
    first = await widget.identify(project, user_id="u1", email=unique_email())
    second = await widget.identify(project, user_id="u1")
    assert second.json()["contact"]["id"] == first.json()["contact"]["id"]
    assert len(await inspect.contacts(project.app_id)) == 1


async def test_identify_matches_email_trimmed_and_case_insensitively(widget, project, inspect):
    first = await widget.identify(project, email="Bob@Example.com")
    second = await widget.identify(project, email="  bob@EXAMPLE.com ")
    assert second.status_code == 200, second.text
    assert second.json()["contact"]["id"] == first.json()["contact"]["id"]
    assert len(await inspect.contacts(project.app_id)) == 1


async def test_identify_claims_a_lead_by_email(widget, project, inspect):
    email = unique_email()
    lead = (await widget.identify(project, email=email)).json()["contact"]
    assert lead["user_id"] is None
    claimed = (await widget.identify(project, user_id="u7", email=email.upper())).json()
    assert claimed["contact"]["id"] == lead["id"]
    assert claimed["contact"]["user_id"] == "u7"
    assert len(await inspect.contacts(project.app_id)) == 1


async def test_identify_does_not_claim_an_email_owned_by_another_user(widget, project, inspect):
    email = unique_email()
    owner = (await widget.identify(project, user_id="owner", email=email)).json()["contact"]
    other = (await widget.identify(project, user_id="other", email=email)).json()
    assert other["contact"]["id"] != owner["id"]
    assert other["contact"]["email"] is None
    assert other["warnings"] == ["email_in_use"]
    emails = {c.user_id: c.email for c in await inspect.contacts(project.app_id)}
    assert emails == {"owner": email, "other": None}


async def test_email_only_identify_reaches_the_contact_with_that_email(widget, project):
    email = unique_email()
    user = (await widget.identify(project, user_id="u1", email=email)).json()["contact"]
    again = (await widget.identify(project, email=email)).json()["contact"]
    assert again["id"] == user["id"]


async def test_a_changed_email_is_stored(widget, project, inspect):
    await widget.identify(project, user_id="u1", email=unique_email())
    new_email = unique_email("new")
    body = (await widget.identify(project, user_id="u1", email=new_email)).json()
    assert body["contact"]["email"] == new_email
    assert body["warnings"] == []
    assert (await inspect.contacts(project.app_id))[0].email_normalized == new_email.lower()


async def test_a_changed_email_owned_by_another_user_is_left_alone(widget, project):
    taken = unique_email("taken")
    original = unique_email("mine")
    await widget.identify(project, user_id="owner", email=taken)
    await widget.identify(project, user_id="u1", email=original)
    body = (await widget.identify(project, user_id="u1", email=taken)).json()
    assert body["contact"]["email"] == original
    assert body["warnings"] == ["email_in_use"]


async def test_a_changed_email_of_a_lead_merges_the_lead(widget, project, inspect):
    lead_email = unique_email("lead")
    lead_visitor = unique("v")
    lead = await widget.identify(
        project,
        visitor_id=lead_visitor,
        email=lead_email,
        name="From chat",
        metadata={"source": "chat", "plan": "free"},
        company={"id": "lead-co"},
    )
    lead_id = lead.json()["contact"]["id"]
    await widget.identify(project, user_id="u1", email=unique_email(), metadata={"plan": "pro"})
    merged = (await widget.identify(project, user_id="u1", email=lead_email)).json()
    assert merged["warnings"] == []
    assert merged["contact"]["email"] == lead_email
    assert merged["contact"]["metadata"] == {"source": "chat", "plan": "pro"}
    assert "lead-co" in merged["company_ids"]
    contacts = await inspect.contacts(project.app_id)
    assert [c.user_id for c in contacts] == ["u1"]
    assert lead_id not in [c.id for c in contacts]
    # The lead's visitor now belongs to the surviving contact.
    visitor = await inspect.visitor(project.app_id, lead_visitor)
    assert visitor.contact_id == merged["contact"]["id"]


async def test_anonymous_properties_move_to_the_contact_and_incoming_values_win(widget, project):
    visitor = unique("v")
    anonymous = await widget.set_properties(
        project, visitor, {"plan": "free", "seen_pricing": True}
    )
    assert anonymous.status_code == 200, anonymous.text
    assert anonymous.json()["contact"] is None
    body = (
        await widget.identify(project, visitor_id=visitor, user_id="u1", metadata={"plan": "pro"})
    ).json()
    assert body["contact"]["metadata"] == {"plan": "pro", "seen_pricing": True}


async def test_anonymous_properties_beat_older_contact_values(widget, project):
    await widget.identify(project, user_id="u1", metadata={"theme": "light", "lang": "en"})
    visitor = unique("v")
    await widget.set_properties(project, visitor, {"theme": "dark"})
    body = (await widget.identify(project, visitor_id=visitor, user_id="u1")).json()
    assert body["contact"]["metadata"] == {"theme": "dark", "lang": "en"}


async def test_account_switch_rebinds_the_visitor_and_moves_nothing(widget, project, inspect):
    visitor = unique("v")
    alice = (
        await widget.identify(
            project, visitor_id=visitor, user_id="alice", metadata={"a": 1}, company={"id": "acme"}
        )
    ).json()
    bob = (await widget.identify(project, visitor_id=visitor, user_id="bob")).json()
    assert bob["contact"]["id"] != alice["contact"]["id"]
    assert bob["contact"]["metadata"] == {}
    assert bob["active_company"] is None  # Alice's company is not Bob's
    assert bob["company_ids"] == []
    assert (await inspect.visitor(project.app_id, visitor)).contact_id == bob["contact"]["id"]
    alice_again = (await widget.identify(project, user_id="alice")).json()
    assert alice_again["contact"]["metadata"] == {"a": 1}
    assert alice_again["company_ids"] == ["acme"]


async def test_name_replaces_and_metadata_merges_with_null_deleting(widget, project):
    await widget.identify(project, user_id="u1", name="Al", metadata={"a": 1, "b": 2, "c": 3})
    body = (
        await widget.identify(
            project, user_id="u1", name="Alice", metadata={"b": None, "c": 33, "d": [1, "x"]}
        )
    ).json()
    assert body["contact"]["name"] == "Alice"
    assert body["contact"]["metadata"] == {"a": 1, "c": 33, "d": [1, "x"]}


async def test_company_is_upserted_linked_and_made_active(widget, project, inspect):
    body = (
        await widget.identify(
            project,
            user_id="u1",
            company={"id": "acme", "name": "Acme", "metadata": {"tier": "gold", "seats": 5}},
        )
    ).json()
    assert body["active_company"] == {
        "id": "acme",
        "name": "Acme",
        "stage": None,
        "metadata": {"tier": "gold", "seats": 5},
    }
    assert body["company_ids"] == ["acme"]
    again = (
        await widget.identify(
            project, user_id="u1", company={"id": "acme", "metadata": {"seats": None, "x": "y"}}
        )
    ).json()
    assert again["active_company"]["name"] == "Acme"
    assert again["active_company"]["metadata"] == {"tier": "gold", "x": "y"}
    assert len(await inspect.companies(project.app_id)) == 1


async def test_company_ids_link_without_changing_the_active_company(widget, project, inspect):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id="u1", company={"id": "acme"})
    body = (
        await widget.identify(
            project, visitor_id=visitor, user_id="u1", company_ids=["beta", "gamma"]
        )
    ).json()
    assert body["active_company"]["id"] == "acme"
    assert body["company_ids"] == ["acme", "beta", "gamma"]
    beta = next(c for c in await inspect.companies(project.app_id) if c.external_id == "beta")
    assert beta.name is None and beta.metadata_ == {}


async def test_company_null_clears_the_active_company_and_keeps_links(widget, project):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id="u1", company={"id": "acme"})
    body = (await widget.identify(project, visitor_id=visitor, user_id="u1", company=None)).json()
    assert body["active_company"] is None
    assert body["company_ids"] == ["acme"]


async def test_omitting_company_keeps_the_active_company(widget, project):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id="u1", company={"id": "acme"})
    body = (await widget.identify(project, visitor_id=visitor, user_id="u1")).json()
    assert body["active_company"]["id"] == "acme"


async def test_company_stage_is_written_under_the_project_default_mode(widget, project, inspect):
    first = (
        await widget.identify(project, user_id="u1", company={"id": "acme", "stage": "Lead"})
    ).json()
    assert first["stage"] == {
        "applied": True,
        "previous": None,
        "stage": "Lead",
        "mode": "overwrite",
        "reason": None,
    }
    second = (
        await widget.identify(project, user_id="u1", company={"id": "acme", "stage": "Trial"})
    ).json()
    assert second["stage"]["applied"] is True
    assert second["stage"]["previous"] == "Lead"
    assert second["active_company"]["stage"] == "Trial"
    history = await inspect.stage_history(project.app_id, "acme")
    assert [(h.previous, h.value, h.source) for h in history] == [
        (None, "Lead", "widget"),
        ("Lead", "Trial", "widget"),
    ]


async def test_a_per_request_stage_mode_overrides_the_default(widget, project):
    await widget.identify(project, user_id="u1", company={"id": "acme", "stage": "Lead"})
    body = (
        await widget.identify(
            project, user_id="u1", company={"id": "acme", "stage": "Trial"}, stage_mode="if_empty"
        )
    ).json()
    assert body["stage"]["applied"] is False
    assert body["stage"]["reason"] == "stage_already_set"
    assert body["active_company"]["stage"] == "Lead"


async def test_a_failed_identify_writes_nothing(widget, new_project, inspect):
    project = await new_project(stage_mode="forward_only", stages=["Lead", "Customer"])
    response = await widget.identify(
        project,
        user_id="u1",
        email=unique_email(),
        metadata={"a": 1},
        company={"id": "acme", "stage": "Not a stage"},
    )
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "unknown_stage"
    assert response.json()["error"]["field"] == "company.stage"
    assert await inspect.contacts(project.app_id) == []
    assert await inspect.companies(project.app_id) == []


async def test_set_properties_merges_into_the_bound_contact(widget, project):
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id="u1", metadata={"a": 1, "b": 2})
    response = await widget.set_properties(project, visitor, {"b": None, "c": True})
    assert response.status_code == 200, response.text
    assert response.json()["contact"]["metadata"] == {"a": 1, "c": True}
    assert response.json()["properties"] == {}


async def test_set_properties_keeps_anonymous_values_on_the_visitor(widget, project):
    visitor = unique("v")
    await widget.set_properties(project, visitor, {"a": 1, "b": 2})
    response = await widget.set_properties(project, visitor, {"b": None})
    assert response.json() == {
        "visitor_id": visitor,
        "contact": None,
        "properties": {"a": 1},
        "warnings": [],
    }

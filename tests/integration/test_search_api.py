"""README "Search": `POST /api/projects/{app_id}/contacts/search` through HTTP: filters on
attributes and linked companies, a wrong query named by its path, totals and paging."""

from __future__ import annotations

from tests.factories import unique


async def test_a_search_finds_contacts_by_their_attributes_and_companies(widget, team, project):
    for i, (plan, stage) in enumerate([("enterprise", "Trial"), ("Enterprise", "Customer"),
                                       ("free", "Trial"), (None, None)]):  # fmt: skip
        metadata = {"seats": i * 10, **({"plan": plan} if plan else {})}
        company = {"id": unique("co"), **({"stage": stage} if stage else {})}
        made = await widget.identify(
            project, user_id=f"u{i}", name=f"N{i}", metadata=metadata, company=company
        )
        assert made.status_code == 200, made.text
    query = {"operator": "AND", "value": [
        {"field": "metadata.plan", "operator": "=", "value": "ENTERPRISE"},
        {"field": "company.stage", "operator": "IN", "value": ["trial", "customer"]}]}  # fmt: skip
    found = await team.post("/contacts/search", {"query": query, "sort": {"field": "name"}})
    assert found.status_code == 200, found.text
    body = found.json()
    assert [c["user_id"] for c in body["items"]] == ["u0", "u1"]
    assert (body["total"], body["total_exact"], body["next_cursor"]) == (2, True, None)

    not_free = {"field": "metadata.plan", "operator": "!=", "value": "free"}
    found = await team.post("/contacts/search", {"query": not_free, "limit": 2,
                                                 "sort": {"field": "metadata.seats"}})  # fmt: skip
    first = found.json()
    assert [c["user_id"] for c in first["items"]] == ["u0", "u1"]  # u3 has no plan: found too
    assert first["total"] == 3
    rest = await team.post("/contacts/search", {"query": not_free, "limit": 2,
                                                "sort": {"field": "metadata.seats"},
                                                "cursor": first["next_cursor"]})  # fmt: skip
    assert [c["user_id"] for c in rest.json()["items"]] == ["u3"]
    assert rest.json()["next_cursor"] is None


async def test_a_wrong_query_is_422_naming_its_path(team):
    wrong = await team.post(
        "/contacts/search",
        {"query": {"operator": "OR", "value": [
            {"field": "name", "operator": "=", "value": "a"},
            {"field": "metadata.nope", "operator": "=", "value": 1}]}},
    )  # fmt: skip
    assert wrong.status_code == 422, wrong.text
    error = wrong.json()["error"]
    assert (error["code"], error["field"]) == ("invalid_query", "query.value[1].field")
    bad_cursor = await team.post("/contacts/search", {"cursor": "nonsense"})
    assert bad_cursor.status_code == 422
    assert bad_cursor.json()["error"]["code"] == "invalid_cursor"


async def test_a_cursor_from_another_sort_is_refused(widget, team, project):
    for i in range(3):
        await widget.identify(project, user_id=unique("u"), metadata={"seats": i})
    by_seats = await team.post("/contacts/search", {"sort": {"field": "metadata.seats"},
                                                    "limit": 1})  # fmt: skip
    cursor = by_seats.json()["next_cursor"]
    by_date = await team.post(
        "/contacts/search", {"sort": {"field": "created_at"}, "limit": 1, "cursor": cursor}
    )
    assert by_date.status_code == 422, by_date.text


async def test_an_unknown_key_of_the_body_is_named_even_when_it_is_called_body(team):
    refused = await team.post("/contacts/search", {"body": "x"})
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "body"

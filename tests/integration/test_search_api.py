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


async def _identified(widget, project, **fields):
    visitor = unique("v")
    made = await widget.identify(project, visitor_id=visitor, **fields)
    assert made.status_code == 200, made.text
    return visitor


async def test_companies_are_found_by_their_deals_and_contacts(widget, team, project):
    qualified = {"id": "big", "stage": "Qualified", "metadata": {"arr": 9}}
    big = await _identified(widget, project, user_id=unique("u"), company=qualified)
    await _identified(widget, project, user_id=unique("u"), company={"id": "big"})
    small = await _identified(widget, project, user_id=unique("u"),
                              company={"id": "small", "stage": "Qualified"})  # fmt: skip
    await _identified(widget, project, user_id=unique("u"), company={"id": "dealless"})
    for visitor, deal in ((big, {"id": "d1", "amount": 25000}),
                          (small, {"id": "d2", "amount": 500})):  # fmt: skip
        made = await widget.call("set-deal", project, visitor, deal=deal)
        assert made.status_code == 200, made.text
    query = {"operator": "AND", "value": [
        {"field": "stage", "operator": "=", "value": "qualified"},
        {"field": "deal.status", "operator": "=", "value": "open"},
        {"field": "deal.amount", "operator": ">", "value": 10000}]}  # fmt: skip
    found = await team.post("/companies/search", {"query": query})
    assert found.status_code == 200, found.text
    body = found.json()
    assert [(c["id"], c["contact_count"]) for c in body["items"]] == [("big", 2)]
    assert (body["total"], body["total_exact"]) == (1, True)
    no_deal = {"field": "deal.amount", "operator": "!exists"}
    found = await team.post("/companies/search", {"query": no_deal, "sort": {"field": "id"}})
    assert [c["id"] for c in found.json()["items"]] == ["dealless"]
    listed = await team.get("/companies", sort='{"field": "contact_count", "order": "desc"}')
    assert [c["id"] for c in listed.json()["items"]][:1] == ["big"]


async def test_conversations_are_found_by_their_contact_and_company(widget, team, project):
    for plan, stage in (("enterprise", "Trial"), ("free", "Trial"), ("enterprise", "Customer")):
        visitor = await _identified(widget, project, user_id=unique("u"),
                                    metadata={"plan": plan},
                                    company={"id": unique("co"), "stage": stage})  # fmt: skip
        sent = await widget.call("messages", project, visitor, body=f"{plan} {stage}")
        assert sent.status_code == 200, sent.text
    query = {"operator": "AND", "value": [
        {"field": "status", "operator": "=", "value": "open"},
        {"field": "contact.metadata.plan", "operator": "=", "value": "Enterprise"},
        {"field": "company.stage", "operator": "IN", "value": ["Trial"]}]}  # fmt: skip
    found = await team.post("/conversations/search", {"query": query})
    assert found.status_code == 200, found.text
    body = found.json()
    assert [c["last_message"]["body"] for c in body["items"]] == ["enterprise Trial"]
    assert body["total"] == 1
    events = {"field": "event", "event": "x", "operator": "exists"}
    wrong = await team.post("/conversations/search", {"query": events})
    assert wrong.status_code == 422
    assert wrong.json()["error"]["field"] == "query.field"


async def test_a_list_takes_the_query_in_its_url(widget, team, project):
    for plan in ("enterprise", "free", "enterprise"):
        visitor = await _identified(widget, project, user_id=unique("u"), metadata={"plan": plan})
        await widget.call("messages", project, visitor, body=plan)
    enterprise = '{"field": "metadata.plan", "operator": "=", "value": "enterprise"}'
    contacts = await team.get("/contacts", filter=enterprise, limit=1)
    assert contacts.status_code == 200, contacts.text
    first = contacts.json()
    assert (len(first["items"]), first["total"], first["total_exact"]) == (1, 2, True)
    rest = await team.get("/contacts", filter=enterprise, cursor=first["next_cursor"])
    assert len(rest.json()["items"]) == 1 and rest.json()["next_cursor"] is None
    assert rest.json()["items"][0]["id"] != first["items"][0]["id"]

    by_plan = '{"field": "contact.metadata.plan", "operator": "!=", "value": "enterprise"}'
    conversations = await team.get("/conversations", filter=by_plan, status="open")
    assert [c["last_message"]["body"] for c in conversations.json()["items"]] == ["free"]
    closed = await team.get("/conversations", filter=by_plan, status="closed")
    assert closed.json()["total"] == 0

    for params, field in (({"filter": "{nope"}, "filter"),
                          ({"filter": '{"field": "x", "operator": "exists"}'}, "filter.field"),
                          ({"filter": enterprise, "q": "a"}, "q"),
                          ({"sort": '{"field": "company.name"}'}, "sort.field")):  # fmt: skip
        refused = await team.get("/contacts", **params)
        assert refused.status_code == 422, (params, refused.text)
        assert refused.json()["error"]["field"] == field


async def test_a_list_answers_a_saved_views_records(widget, team, project):
    for plan in ("enterprise", "free", "enterprise"):
        await _identified(widget, project, user_id=unique("u"), metadata={"plan": plan})
    query = {"field": "metadata.plan", "operator": "=", "value": "enterprise"}
    made = await team.post("/views", {"name": "Enterprise", "model": "contacts", "query": query,
                                      "sort": {"field": "user_id", "order": "desc"}})  # fmt: skip
    assert made.status_code == 201, made.text
    view_id = made.json()["id"]
    listed = await team.get("/contacts", view=view_id)
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert (listed.json()["total"], len(items)) == (2, 2)
    assert [c["user_id"] for c in items] == sorted((c["user_id"] for c in items), reverse=True)
    narrowed = await team.get("/contacts", view=view_id,
                              filter=f'{{"field": "user_id", "operator": "=", '
                                     f'"value": "{items[0]["user_id"]}"}}')  # fmt: skip
    assert [c["id"] for c in narrowed.json()["items"]] == [items[0]["id"]]

    wrong_model = await team.get("/conversations", view=view_id)
    assert wrong_model.status_code == 422
    assert wrong_model.json()["error"]["field"] == "view"
    missing = await team.get("/companies", view=999999)
    assert (missing.status_code, missing.json()["error"]["field"]) == (404, "view")

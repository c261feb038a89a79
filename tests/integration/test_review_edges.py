"""What round 2's review found by attacking the service, as the attacker's steps (README
"Security"). Each test failed before its rule existed."""

from __future__ import annotations

import httpx
import pytest

from tests.factories import unique, unique_email


async def post_body(http, path, body, *, token=None, declared=None, content_type="text/csv"):
    headers = {"Content-Type": content_type}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    if declared is not None:
        headers["Content-Length"] = str(declared)
    return await http.post(path, content=body, headers=headers)


# 9. Ids and emails with invisible characters make look-alike twins.

INVISIBLE = ["\u200b", "\u2060", "\ufeff", "\u180e", "\u034f", "\ufe0f", "\U000e0100"]


def assert_invisible_refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert (error["code"], error["field"]) == ("invisible_character", field)


async def guarded_company(widget, project) -> str:
    """A company linked to a verified contact: unverified visitors may not touch it."""
    company = unique("acme")
    customer = unique("u")
    linked = await widget.identify(
        project, visitor_id=customer, user_id=customer, signed=True,
        company={"id": company, "name": "Acme", "metadata": {"arr": 987654321}},
    )  # fmt: skip
    assert linked.status_code == 200, linked.text
    return company


@pytest.mark.parametrize("invisible", INVISIBLE)
async def test_a_guarded_company_gets_no_look_alike_twin(widget, project, inspect, invisible):
    company = await guarded_company(widget, project)
    attacker = unique("v")
    for twin in (company + invisible, invisible + company, company[:2] + invisible + company[2:]):
        answer = await widget.identify(
            project, visitor_id=attacker, user_id=unique("u_eve"),
            company={"id": twin, "name": "Acme", "stage": "Churned"},
        )  # fmt: skip
        assert_invisible_refused(answer, "company.id")
    assert [c.external_id for c in await inspect.companies(project.app_id)] == [company]


@pytest.mark.parametrize("invisible", INVISIBLE)
async def test_identify_refuses_invisible_characters_naming_the_field(
    widget, project, inspect, invisible
):
    user, email = unique("u"), unique_email("alice")
    first = await widget.identify(project, user_id=user, email=email)
    assert first.status_code == 200
    local, domain = email.split("@")
    for fields, field in (
        ({"user_id": user + invisible}, "user_id"),
        ({"email": f"{local}{invisible}@{domain}"}, "email"),
        ({"user_id": unique("u"), "visitor_id": unique("v") + invisible}, "visitor_id"),
        ({"user_id": user, "company": {"id": "acme" + invisible}}, "company.id"),
        ({"user_id": user, "company_ids": ["acme" + invisible]}, "company_ids[0]"),
    ):
        assert_invisible_refused(await widget.identify(project, **fields), field)
    contacts = await inspect.contacts(project.app_id)
    assert [(c.user_id, c.email) for c in contacts] == [(user, email)]
    assert await inspect.companies(project.app_id) == []


async def test_other_widget_ids_refuse_invisible_characters(widget, project, inspect):
    visitor, user = unique("v"), unique("u")
    await widget.identify(project, visitor_id=visitor, user_id=user, company={"id": "acme"})
    for route, body, field in (
        ("track", {"event": "paid", "event_id": "e1\u200b"}, "event_id"),
        ("track", {"event": "paid", "company_id": "acme\u2060"}, "company_id"),
        ("set-stage", {"stage": "Lead", "company_id": "acme\ufeff"}, "company_id"),
        ("set-deal", {"deal": {"id": "d1\u034f", "amount": 1}}, "deal.id"),
    ):
        answer = await widget.call(route, project, visitor, **body)
        assert_invisible_refused(answer, field)
    assert await inspect.events(project.app_id, "paid") == []
    assert await inspect.deals(project.app_id) == []


async def test_batch_items_with_invisible_characters_fail_naming_the_field(team, inspect):
    user = unique("u")
    answer = await team.post(
        "/batch",
        {
            "items": [
                {"type": "identify", "user_id": user},
                {"type": "identify", "user_id": user + "\u200b"},
                {"type": "identify", "email": "ann\u034f@example.com"},
                {"type": "identify", "user_id": user, "company": {"id": "acme\u180e"}},
                {"type": "track", "user_id": user, "event": "x", "event_id": "e\ufe0f"},
            ]
        },
    )
    assert answer.status_code == 200, answer.text
    assert [(r["status"], r.get("error", {}).get("code"), r.get("error", {}).get("field"))
            for r in answer.json()["results"]] == [
        ("ok", None, None),
        ("error", "invisible_character", "items[1].user_id"),
        ("error", "invisible_character", "items[2].email"),
        ("error", "invisible_character", "items[3].company.id"),
        ("error", "invisible_character", "items[4].event_id"),
    ]  # fmt: skip
    assert [c.user_id for c in await inspect.contacts(team.project.app_id)] == [user]
    assert await inspect.companies(team.project.app_id) == []


async def test_import_rows_with_invisible_characters_fail_naming_the_column(team, inspect):
    contacts = (
        "user_id,email,company_id\n"
        "u1\u2060,,\n"
        ",ann\U000e0100@example.com,\n"
        "u3,,acme\u200b\n"
        "u4,,acme\n"
    )
    answer = await post_body(
        team.http,
        f"/api/projects/{team.project.app_id}/imports?kind=contacts",
        contacts.encode(),
        token=team.token,
    )
    assert answer.status_code == 200, answer.text
    failures = [(f["line"], f["code"], f["field"]) for f in answer.json()["failures"]]
    assert failures == [
        (2, "invisible_character", "user_id"),
        (3, "invisible_character", "email"),
        (4, "invisible_character", "company_id"),
    ]
    companies = "id,name\nacme\u034f,Acme twin\n"
    answer = await post_body(
        team.http,
        f"/api/projects/{team.project.app_id}/imports?kind=companies",
        companies.encode(),
        token=team.token,
    )
    assert answer.status_code == 200, answer.text
    [failure] = answer.json()["failures"]
    assert (failure["code"], failure["field"]) == ("invisible_character", "id")
    assert [c.user_id for c in await inspect.contacts(team.project.app_id)] == ["u4"]
    assert [c.external_id for c in await inspect.companies(team.project.app_id)] == ["acme"]

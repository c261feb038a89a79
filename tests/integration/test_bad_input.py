"""README "Errors and limits": every refusal is a JSON error naming the field, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.factories import identify_payload, unique

PLACEHOLDERS = ["null", "undefined", "None", "0", "-1", "anonymous", "GUEST", "   "]


def error_of(response):
    return response.json()["error"]


@pytest.mark.parametrize("placeholder", PLACEHOLDERS)
async def test_placeholder_user_ids_are_refused(widget, project, inspect, placeholder):
    response = await widget.identify(project, user_id=placeholder)
    assert response.status_code == 422
    assert error_of(response)["field"] == "user_id"
    assert error_of(response)["code"] in {"placeholder_id", "empty_value"}
    assert await inspect.contacts(project.app_id) == []


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"company": {"id": "undefined"}}, "company.id"),
        ({"company_ids": ["acme", "null"]}, "company_ids[1]"),
    ],
)
async def test_placeholder_company_ids_are_refused(widget, project, fields, field):
    response = await widget.identify(project, user_id="u1", **fields)
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "placeholder_id",
        "message": error_of(response)["message"],
        "field": field,
    }


@pytest.mark.parametrize(
    ("fields", "code", "field"),
    [
        ({"email": "not-an-email"}, "invalid_email", "email"),
        ({"email": "a@b"}, "invalid_email", "email"),
        ({}, "missing_identity", "user_id"),
        ({"user_id": "x" * 256}, "too_long", "user_id"),
        ({"user_id": 42}, "invalid_field", "user_id"),
        ({"user_id": "u1", "name": ""}, "empty_value", "name"),
        ({"user_id": "u1", "metadata": {"k": {"nested": 1}}}, "invalid_field", "metadata.k"),
        ({"user_id": "u1", "metadata": {"k": "x" * 1001}}, "too_long", "metadata.k"),
        ({"user_id": "u1", "metadata": {"k": list(range(51))}}, "too_long", "metadata.k"),
        ({"user_id": "u1", "metadata": {"k" * 65: 1}}, "too_long", "metadata." + "k" * 65),
        (
            {"user_id": "u1", "metadata": {f"k{i}": i for i in range(101)}},
            "too_many_keys",
            "metadata",
        ),
        ({"user_id": "u1", "metadata": {"big": 2**60}}, "invalid_number", "metadata.big"),
        ({"user_id": "u1", "company": {"name": "no id"}}, "missing_field", "company.id"),
        ({"user_id": "u1", "company_ids": [f"c{i}" for i in range(51)]}, "too_long", "company_ids"),
        ({"user_id": "u1", "stage_mode": "sideways"}, "invalid_choice", "stage_mode"),
        ({"user_id": "u1", "name": "nul\x00byte"}, "invalid_string", "name"),
    ],
)
async def test_invalid_fields_are_422_naming_the_field(widget, project, fields, code, field):
    response = await widget.identify(project, **fields)
    assert response.status_code == 422, response.text
    error = error_of(response)
    assert (error["code"], error["field"]) == (code, field), error
    assert error["message"]


async def test_missing_visitor_id_is_named(widget, project):
    response = await widget.post("identify", {"app_id": project.app_id, "user_id": "u1"})
    assert response.status_code == 422
    assert error_of(response)["field"] == "visitor_id"
    assert error_of(response)["code"] == "missing_field"


async def test_unknown_app_id_is_404(widget):
    response = await widget.post(
        "identify", {"app_id": "nope", "visitor_id": "v1", "user_id": "u1"}
    )
    assert response.status_code == 404
    assert error_of(response) == {
        "code": "unknown_app",
        "message": error_of(response)["message"],
        "field": "app_id",
    }


@pytest.mark.parametrize(
    ("raw", "code"),
    [
        (b'{"app_id": "x", ', "invalid_json"),
        (b'{"app_id": "a", "app_id": "b", "visitor_id": "v", "user_id": "u"}', "invalid_json"),
        (b'{"app_id": "a", "visitor_id": "v", "metadata": {"n": NaN}}', "invalid_json"),
        (b'{"app_id": "a", "visitor_id": "v", "metadata": {"n": Infinity}}', "invalid_json"),
        (b'{"app_id": "\xff\xfe", "visitor_id": "v"}', "invalid_json"),
        (b"[" * 5000 + b"]" * 5000, "invalid_json"),
        (b'{"n": ' + b"9" * 5000 + b"}", "invalid_json"),
        (b"", "invalid_json"),
    ],
)
async def test_malformed_json_is_400(widget, raw, code):
    response = await widget.http.post(
        "/api/widget/identify", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert error_of(response)["code"] == code


async def test_a_lone_surrogate_is_refused(widget, project):
    raw = json.dumps(identify_payload(project, user_id="u1", name="x")).replace('"x"', '"\\ud800"')
    response = await widget.http.post(
        "/api/widget/identify", content=raw, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422
    assert error_of(response) == {
        "code": "invalid_string",
        "message": error_of(response)["message"],
        "field": "name",
    }


async def test_a_nul_in_a_query_or_a_path_is_a_422_naming_it(widget, team, project):
    """As in a JSON body: a query parameter or a path holding a NUL never reaches a route."""
    query = {"app_id": project.app_id, "visitor_id": "v\x00"}
    messages = await widget.http.get("/api/widget/messages", params=query)
    assert messages.status_code == 422
    assert error_of(messages) == {
        "code": "invalid_string", "message": "visitor_id contains a NUL character",
        "field": "visitor_id",
    }  # fmt: skip
    company = await team.get("/companies/acme%00corp")
    assert (company.status_code, error_of(company)["field"]) == (422, "path")


async def test_a_non_json_content_type_is_415(widget, project):
    response = await widget.http.post(
        "/api/widget/identify",
        content=json.dumps(identify_payload(project, user_id="u1")),
        headers={"Content-Type": "text/plain"},
    )
    assert response.status_code == 415
    assert error_of(response)["code"] == "unsupported_media_type"


async def test_a_body_over_64_kib_is_413(widget, project, inspect):
    payload = identify_payload(project, user_id="u1", metadata={"k": "x" * 70_000})
    response = await widget.post("identify", payload)
    assert response.status_code == 413
    assert error_of(response)["code"] == "body_too_large"
    assert await inspect.contacts(project.app_id) == []


async def test_a_body_that_is_not_an_object_is_422(widget):
    response = await widget.post("identify", ["not", "an", "object"])
    assert response.status_code == 422


async def test_unknown_routes_answer_json_errors(widget):
    response = await widget.http.get("/api/widget/nope")
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


async def test_set_properties_limits_apply(widget, project):
    response = await widget.set_properties(project, unique("v"), {"k": {"deep": True}})
    assert response.status_code == 422
    assert error_of(response)["field"] == "properties.k"
    response = await widget.set_properties(project, "undefined", {"k": 1})
    assert response.status_code == 422
    assert error_of(response)["field"] == "visitor_id"

"""The OpenAPI document says which credential each operation takes (its `security`, from the
routes' own dependencies), so client generators and Swagger's Authorize send it: checked here
against what each route actually does without a credential and with a team token."""

from __future__ import annotations

import re
from typing import Any

import httpx

Requirements = list[dict[str, list[str]]]
# Optional: only the calls of a visitor bound to a verified contact need it.
WIDGET: Requirements = [{"widgetSession": []}, {}]
TEAM: Requirements = [{"teamToken": []}, {"adminToken": []}]
ADMIN: Requirements = [{"adminToken": []}]
PATH_VALUES = {"model": "contact", "key": "plan", "hash": "0" * 64}


def operations(widget) -> list[tuple[str, str, dict[str, Any]]]:
    schema = widget.http._transport.app.openapi()
    return [(path, method, operation) for path, item in schema["paths"].items()
            for method, operation in item.items()]  # fmt: skip


def url_of(path: str, app_id: str) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: PATH_VALUES.get(m[1], "1"), path).replace(
        "/api/projects/1/", f"/api/projects/{app_id}/", 1
    )


async def call(http: httpx.AsyncClient, method: str, url: str, token: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    body: dict[str, object] | None = {} if method in {"post", "patch"} else None
    return await http.request(method, url, headers=headers, json=body)


async def test_the_document_declares_the_three_bearer_credentials(widget):
    schemes = widget.http._transport.app.openapi()["components"]["securitySchemes"]
    for name in ("widgetSession", "teamToken", "adminToken"):
        assert schemes[name]["type"] == "http" and schemes[name]["scheme"] == "bearer", name
        assert schemes[name]["description"], name
    assert schemes["widgetSession"]["bearerFormat"] == "JWT"
    assert schemes["streamTicket"] == {
        "type": "apiKey", "in": "query", "name": "ticket",
        "description": schemes["streamTicket"]["description"],
    }  # fmt: skip


async def test_no_operation_takes_the_authorization_header_as_a_plain_parameter(widget):
    for path, method, operation in operations(widget):
        names = {p["name"].lower() for p in operation.get("parameters", []) if p["in"] == "header"}
        assert "authorization" not in names, (method, path)


async def test_every_operation_that_refuses_a_call_without_a_credential_declares_one(
    widget, project
):
    for path, method, operation in operations(widget):
        if path.endswith("/stream") and path.startswith("/api/widget/"):
            continue  # a known visitor's stream would never end; the widget's rule is below
        response = await call(widget.http, method, url_of(path, project.app_id), None)
        declared = operation.get("security", [])
        if response.status_code == 401:
            assert declared and {} not in declared, (method, path, declared)
        if path.startswith("/api/widget/"):
            assert declared == WIDGET, (method, path, declared)
        elif path.startswith("/api/projects/"):
            assert response.status_code == 401, (method, path, response.text)
        else:
            assert not declared, (method, path, declared)


async def test_admin_operations_declare_the_admin_token_and_team_operations_both(widget, team):
    kinds: dict[bool, int] = {}
    for path, method, operation in operations(widget):
        if not path.startswith("/api/projects/"):
            continue
        declared = operation["security"]
        if path.endswith("/stream"):
            assert declared == [{"streamTicket": []}, *TEAM], declared
            continue  # with a token it opens, and never ends
        response = await call(widget.http, method, url_of(path, team.project.app_id), team.token)
        admin_only = response.status_code == 403 and (
            response.json()["error"]["code"] == "admin_token_required"
        )
        assert declared == (ADMIN if admin_only else TEAM), (method, path, response.text)
        kinds[admin_only] = kinds.get(admin_only, 0) + 1
    assert kinds[True] >= 10 and kinds[False] >= 10, kinds

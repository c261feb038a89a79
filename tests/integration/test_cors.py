"""README "Identify" and "CORS": CORS for the project's allowed origins; other browsers get 403."""

from __future__ import annotations


async def test_a_preflight_is_answered_for_the_widget_routes(widget):
    response = await widget.http.options(
        "/api/widget/identify",
        headers={
            "Origin": "https://app.example.com",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type,authorization",
        },
    )
    assert response.status_code == 200
    assert "POST" in response.headers["access-control-allow-methods"]
    assert "authorization" in response.headers["access-control-allow-headers"].lower()


async def test_an_allowed_origin_gets_cors_headers(widget, new_project):
    project = await new_project(allowed_origins=["https://App.Example.com/"])
    response = await widget.http.post(
        "/api/widget/identify",
        json={"app_id": project.app_id, "visitor_id": "v1", "user_id": "u1"},
        headers={"Origin": "https://app.example.com"},
    )
    assert response.status_code == 200, response.text
    assert response.headers["access-control-allow-origin"] in {"*", "https://app.example.com"}


async def test_an_origin_outside_the_list_is_403_and_writes_nothing(widget, new_project, inspect):
    project = await new_project(allowed_origins=["https://app.example.com"])
    response = await widget.http.post(
        "/api/widget/identify",
        json={"app_id": project.app_id, "visitor_id": "v1", "user_id": "u1"},
        headers={"Origin": "https://evil.example.net"},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "origin_not_allowed"
    assert await inspect.contacts(project.app_id) == []


async def test_a_project_without_a_list_accepts_any_origin(widget, project):
    response = await widget.http.post(
        "/api/widget/identify",
        json={"app_id": project.app_id, "visitor_id": "v1", "user_id": "u1"},
        headers={"Origin": "https://anywhere.example.org"},
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] in {"*", "https://anywhere.example.org"}


async def test_team_routes_get_no_widget_cors(widget):
    response = await widget.http.get("/healthz", headers={"Origin": "https://x.example"})
    assert "access-control-allow-origin" not in response.headers


async def test_the_team_stream_is_readable_from_any_origin_but_tickets_are_not(widget, team):
    """A page opens the stream with a ticket its server asked for; the team token that asks
    stays on that server, so asking gets no CORS."""
    origin = {"Origin": "https://dashboard.example.com"}
    stream = f"/api/projects/{team.project.app_id}/stream"
    refused = await widget.http.get(stream, params={"ticket": "made-up"}, headers=origin)
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "*"
    preflight = await widget.http.options(
        stream,
        headers={**origin, "Access-Control-Request-Method": "GET",
                 "Access-Control-Request-Headers": "last-event-id"},
    )  # fmt: skip
    assert preflight.status_code == 200
    assert "last-event-id" in preflight.headers["access-control-allow-headers"].lower()
    asked = await widget.http.post(
        f"{stream}-tickets", headers={**origin, "Authorization": f"Bearer {team.token}"}
    )
    assert asked.status_code == 201
    assert "access-control-allow-origin" not in asked.headers

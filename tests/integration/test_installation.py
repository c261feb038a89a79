"""README "Installation check and refusals": widget calls counted by origin and outcome without
a statement in their transaction, the enforcement impact, and refusals that keep nothing
secret; two real server processes add up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest

from tests.factories import identify_payload, make_project, make_token, unique
from tests.integration.conftest import TeamClient
from tests.servers import running_server

APP = "https://app.acme.com"
OTHER = "https://staging.acme.com"


def _expired_token(project) -> str:
    claims = {"user_id": "u-expired", "exp": datetime.now(UTC) - timedelta(minutes=5)}
    return jwt.encode(claims, project.secret, algorithm="HS256")


async def _calls(post, project) -> dict[str, str]:
    """A mix of widget calls from two origins and none; the secret-looking values sent."""
    wrong_hash = "f" * 64
    expired = _expired_token(project)
    sent = [
        (APP, identify_payload(project, user_id="u-signed", signed=True)),
        (APP, identify_payload(project, user_id="u-plain")),
        (APP, identify_payload(project, user_id="u-plain")),
        (APP, identify_payload(project, user_id="u-wrong", user_hash=wrong_hash)),
        (OTHER, identify_payload(project, identity_token=expired)),
        (OTHER, {"app_id": project.app_id, "visitor_id": "v-bad", "metadata": "nope"}),
        (None, identify_payload(project, user_id="u-signed", signed=True)),
    ]
    for origin, body in sent:
        headers = {"Origin": origin} if origin else {}
        await post("/api/widget/identify", json=body, headers=headers)
    track = {"app_id": project.app_id, "visitor_id": unique("v"), "event": "x" * 500}
    await post("/api/widget/track", json=track, headers={"Origin": APP})
    return {"hash": wrong_hash, "token": expired, "secret": project.secret}


def _by_origin(report: dict[str, Any]) -> dict[str | None, Any]:
    return {o["origin"]: o for o in report["origins"]}


async def test_calls_are_counted_by_origin_and_outcome_and_refusals_keep_no_secret(
    widget, database, project
):
    app = widget.http._transport.app
    secrets = await _calls(widget.http.post, project)
    await app.state.installation.flush()
    admin = TeamClient(widget.http, project, await make_token(database, project, admin=True))

    report = (await admin.get("/installation", days=7)).json()
    origins = _by_origin(report)
    assert set(origins) == {APP, OTHER, None}
    assert origins[APP]["calls"] == 5
    assert origins[APP]["identify"] == {"total": 4, "verified": 1, "unsigned": 2,
                                        "failed": {"hash_mismatch": 1}}  # fmt: skip
    assert origins[OTHER]["identify"]["failed"] == {"token_expired": 1, "invalid_field": 1}
    assert origins[None]["identify"]["verified"] == 1
    # u-plain never proved itself; u-signed did; u-wrong failed; the expired token's user is
    # unknown (its claims are not believed).
    assert report["enforcement_impact"]["users"] == 3
    assert report["enforcement_impact"]["never_verified"] == 2

    refusals = (await admin.get("/refusals")).json()["items"]
    codes = [(r["route"], r["code"], r["field"]) for r in refusals]
    assert codes[:4] == [("track", "too_long", "event"), ("identify", "invalid_field", "metadata"),
                         ("identify", "invalid_identity_token", "identity_token"),
                         ("identify", "invalid_user_hash", "user_hash")]  # fmt: skip
    assert refusals[0]["origin"] == APP and refusals[1]["visitor_id"] == "v-bad"
    text = str(refusals)
    assert not any(value in text for value in secrets.values())
    team = TeamClient(widget.http, project, await make_token(database, project))
    assert (await team.get("/installation")).status_code == 403
    assert (await team.get("/refusals")).status_code == 403


async def test_a_warning_is_listed_with_the_refusals(widget, database, project):
    app = widget.http._transport.app
    visitor = unique("v")
    await widget.identify(project, visitor_id=visitor, user_id=unique("u"), metadata={"seats": 3})
    answered = await widget.identify(
        project, visitor_id=visitor, user_id=unique("u"), metadata={"seats": "many"}
    )
    assert answered.json()["warnings"] == ["attribute_type:seats"]
    await app.state.installation.flush()
    admin = TeamClient(widget.http, project, await make_token(database, project, admin=True))
    [warning] = (await admin.get("/refusals")).json()["items"]
    assert (warning["status"], warning["code"], warning["field"]) == (
        200,
        "attribute_type",
        "metadata.seats",
    )


@pytest.fixture(scope="module")
def two_servers(database_url: str, artifacts_dir) -> Iterator[tuple[str, str]]:
    env = {"HAL_INSTALLATION_FLUSH_SECONDS": "1"}
    with (
        running_server(database_url, env=env, log=artifacts_dir / "installation-a.log") as one,
        running_server(database_url, env=env, log=artifacts_dir / "installation-b.log") as two,
    ):
        yield one, two


@pytest.mark.server
async def test_two_processes_add_up_within_seconds(two_servers, database):
    project = await make_project(database)
    token = await make_token(database, project, admin=True)
    async with httpx.AsyncClient(timeout=30) as http:
        for server in two_servers:

            async def post(path, **kwargs):
                return await http.post(server + path, **kwargs)  # noqa: B023

            await _calls(post, project)
        url = f"{two_servers[0]}/api/projects/{project.app_id}/installation"
        deadline = time.monotonic() + 15
        while True:
            report = (await http.get(url, headers={"Authorization": f"Bearer {token}"})).json()
            origins = _by_origin(report)
            if origins.get(APP, {}).get("calls") == 10 or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
    assert origins[APP]["calls"] == 10
    assert origins[APP]["identify"]["failed"] == {"hash_mismatch": 2}
    assert origins[OTHER]["calls"] == 4

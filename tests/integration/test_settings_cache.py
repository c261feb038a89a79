"""Project settings are cached per process, never older than two seconds on any process
(README "Secret rotation and protected attributes"; the write path's project cache). Real `hal
serve` processes and the real `hal` command, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import httpx
import pytest

from hal.db.project_cache import MAX_AGE_SECONDS
from tests.factories import make_project, unique
from tests.servers import running_server

pytestmark = pytest.mark.server

CONTRACT_SECONDS = 2.0


def hal(database_url: str, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "hal", *args, "--database-url", database_url],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout


def test_the_cache_is_younger_than_the_contract():
    assert MAX_AGE_SECONDS < CONTRACT_SECONDS


async def test_a_change_by_another_process_reaches_every_server_within_two_seconds(
    database_url, database
):
    project = await make_project(database)
    with running_server(database_url) as first, running_server(database_url) as second:
        async with httpx.AsyncClient(timeout=10) as http:

            async def identify(url: str, **fields: str) -> int:
                body = {"app_id": project.app_id, "visitor_id": unique("v"), **fields}
                return (await http.post(f"{url}/api/widget/identify", json=body)).status_code

            old_hash = project.hash("u1")
            for url in (first, second):
                assert await identify(url, user_id="u1", user_hash=old_hash) == 200
                assert await identify(url, user_id=unique("u")) == 200  # unsigned is allowed

            hal(database_url, "projects", "rotate-secret", project.app_id, "--grace", "0")
            hal(database_url, "projects", "update", project.app_id,
                "--identity-verification", "enforced")  # fmt: skip
            await asyncio.sleep(CONTRACT_SECONDS)
            for url in (first, second):
                assert await identify(url, user_id="u1", user_hash=old_hash) == 401
                assert await identify(url, user_id=unique("u")) == 401


async def test_rotate_secret_revoke_sessions_ends_every_widget_session(database_url, database):
    project = await make_project(database)
    with running_server(database_url) as url:
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            visitor = unique("v")
            signed = await http.post("/api/widget/identify", json={
                "app_id": project.app_id, "visitor_id": visitor, "user_id": "u1",
                "user_hash": project.hash("u1")})  # fmt: skip
            token = signed.json()["session_token"]
            headers = {"Authorization": f"Bearer {token}"}
            body = {"app_id": project.app_id, "visitor_id": visitor, "properties": {"a": 1}}
            assert (await http.post("/api/widget/set-properties", json=body, headers=headers)
                    ).status_code == 200  # fmt: skip

            printed = hal(database_url, "projects", "rotate-secret", project.app_id,
                          "--grace", "24h", "--revoke-sessions")  # fmt: skip
            await asyncio.sleep(CONTRACT_SECONDS)
            refused = await http.post("/api/widget/set-properties", json=body, headers=headers)
            assert refused.status_code == 401
            assert refused.json()["error"]["code"] == "session_token_required"
            # The old identity secret still verifies during its grace period.
            again = await http.post("/api/widget/identify", json={
                "app_id": project.app_id, "visitor_id": visitor, "user_id": "u1",
                "user_hash": project.hash("u1")})  # fmt: skip
            assert again.status_code == 200
            assert '"identity_secret"' in printed

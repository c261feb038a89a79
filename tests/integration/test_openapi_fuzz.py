"""A bounded schemathesis run against the service's own /openapi.json, over real HTTP:
no 5xx, and every response matches the documented schema."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hal.db.engine import Database
from hal.domain.errors import NotFound
from hal.domain.projects import TokenKind
from hal.services.projects import (
    ProjectSettings,
    create_api_token,
    create_project,
    get_project,
)
from tests.servers import running_server

pytestmark = pytest.mark.server

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


# Every `app_id` in a path is the demo project's, and the widget's rate limits are off: the
# run reaches each operation's own logic, not only its 401, 403, 404 or 429.
CONFIG = Path(__file__).with_name("schemathesis.toml")
UNLIMITED = {
    "HAL_WIDGET_RATE_PER_PROJECT": "off",
    "HAL_WIDGET_RATE_PER_VISITOR": "off",
    "HAL_NEW_VISITORS_PER_PROJECT": "off",
    "HAL_NEW_VISITORS_PER_CLIENT": "off",
}


async def _ensure_demo_project(database: Database) -> str:
    """The schema's examples use app_id "demo", so they reach the real identify path; an
    admin token (it opens every team route too) lets the run past authentication."""

    async def work(session) -> str:
        try:
            await get_project(session=session, app_id="demo")
        except NotFound:
            await create_project(session=session, app_id="demo", settings=ProjectSettings())
        issued = await create_api_token(session=session, app_id="demo", kind=TokenKind.ADMIN)
        return issued.token

    return await database.transaction(work)


async def test_schemathesis_finds_no_server_error_and_no_schema_violation(
    database, database_url, artifacts_dir: Path
):
    token = await _ensure_demo_project(database)
    executable = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert executable, "schemathesis is a dev dependency; run through `make test`"
    log = artifacts_dir / f"schemathesis-{database.dialect}.log"
    server_log = artifacts_dir / "server-schemathesis.log"
    with running_server(database_url, log=server_log, env=UNLIMITED) as url:
        result = subprocess.run(
            [
                executable,
                "--config-file",
                str(CONFIG),
                "run",
                f"{url}/openapi.json",
                "--checks",
                CHECKS,
                "--max-examples",
                "30",
                "--seed",
                "1",
                "--no-color",
                "--generation-database",
                "none",
                "--request-timeout",
                "10",
                # Streams never end by design (tests/integration/test_stream.py covers them).
                "--exclude-path-regex",
                "/stream$",
                # Revoking the run's own token would leave every later call a 401.
                "--exclude-name",
                "DELETE /api/projects/{app_id}/tokens/{token_id}",
                "--header",
                f"Authorization: Bearer {token}",
            ],
            capture_output=True,
            text=True,
            timeout=300,
        )
    log.write_text(result.stdout + result.stderr)
    assert result.returncode == 0, result.stdout[-6000:]
    # Secrets never reach the server's log, whatever was thrown at it.
    assert token not in server_log.read_text()

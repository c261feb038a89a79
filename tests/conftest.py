"""Shared fixtures: the two databases every integration test runs on, and real servers.

PostgreSQL comes from HAL_TEST_POSTGRES_URL. Locally, tests needing it are skipped with the
reason when no server answers; in CI (CI=true) that is a failure, never a skip.
"""

from __future__ import annotations

import os
import secrets
import shutil
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url

from hal.db.engine import Database
from hal.db.migrate import migrate

IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"


def require_or_skip(reason: str) -> None:
    """Skip locally; fail in CI, where every backend must be present."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(reason)


async def _admin(base_url: str, sql: str) -> None:
    """Run one statement on the server's maintenance connection (CREATE/DROP DATABASE)."""
    import asyncpg

    url = make_url(base_url)
    conn = await asyncpg.connect(
        host=url.host,
        port=url.port or 5432,
        user=url.username,
        password=url.password,
        database=url.database or "postgres",
        timeout=5,
    )
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


async def _create_postgres_database(base_url: str) -> str:
    name = f"hal_test_{secrets.token_hex(4)}"
    await _admin(base_url, f'CREATE DATABASE "{name}"')
    return make_url(base_url).set(database=name).render_as_string(hide_password=False)


async def _drop_postgres_database(base_url: str, url_to_drop: str) -> None:
    name = make_url(url_to_drop).database
    await _admin(base_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def postgres_base_url() -> str:
    url = os.environ.get("HAL_TEST_POSTGRES_URL")
    if not url:
        require_or_skip("HAL_TEST_POSTGRES_URL is not set (make test sets it)")
    assert url is not None
    return url


@pytest.fixture(scope="session", params=["sqlite", "postgres"])
async def database_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[str]:
    """One fresh database per backend for the whole session; tests isolate by project."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'hal.db'}"
        return
    base = request.getfixturevalue("postgres_base_url")
    try:
        url = await _create_postgres_database(base)
    except (TimeoutError, OSError) as exc:
        require_or_skip(f"no PostgreSQL server answers at {base}: {exc}")
    yield url
    await _drop_postgres_database(base, url)


@pytest.fixture(scope="session")
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(database_url)
    await migrate(db)
    yield db
    await db.dispose()


@pytest.fixture(scope="session")
def artifacts_dir() -> Iterator[Path]:
    ARTIFACTS.mkdir(exist_ok=True)
    yield ARTIFACTS


def chromium_path() -> str | None:
    return shutil.which("chromium") or (
        "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
    )

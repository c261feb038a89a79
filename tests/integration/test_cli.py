"""The `hal` command line (README "Projects and tokens"), run as a user would, on a SQLite file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from hal.cli import app, parse_duration

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    assert hal(url, "migrate")["schema"] == "current"
    return url


def hal(db, *args, input=None, ok=True):
    result = runner.invoke(app, [*args, "--database-url", db], input=input)
    if ok:
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)
    return result


def test_projects_create_prints_the_project_with_its_secret_once(db):
    created = hal(
        db, "projects", "create", "--name", "Acme", "--app-id", "proj_123",
        "--identity-verification", "enforced", "--stage-mode", "forward_only",
        "--stages", "Lead,Trial,Customer", "--allowed-origin", "https://App.acme.com/",
        "--protected-key", "plan",
    )  # fmt: skip
    assert created["app_id"] == "proj_123"
    assert len(created["identity_secret"]) == 64
    assert created["identity_verification"] == "enforced"
    assert created["stages"] == ["Lead", "Trial", "Customer"]
    assert created["allowed_origins"] == ["https://app.acme.com"]
    assert created["protected_keys"] == ["plan"]
    shown = hal(db, "projects", "show", "proj_123")
    assert "identity_secret" not in shown
    assert shown["stage_mode"] == "forward_only"


def test_new_projects_default_to_enabled_verification_and_a_generated_app_id(db):
    created = hal(db, "projects", "create", "--name", "Defaults")
    assert created["app_id"].startswith("proj_")
    assert created["identity_verification"] == "enabled"
    assert created["stage_mode"] == "overwrite"


def test_projects_update_changes_only_what_it_is_given(db):
    hal(db, "projects", "create", "--app-id", "p1", "--stages", "A,B")
    updated = hal(db, "projects", "update", "p1", "--stage-mode", "agent_wins")
    assert (updated["stage_mode"], updated["stages"]) == ("agent_wins", ["A", "B"])
    assert "identity_secret" not in updated


def test_rotate_secret_prints_a_new_secret_and_the_grace_period(db):
    first = hal(db, "projects", "create", "--app-id", "p1")
    rotated = hal(db, "projects", "rotate-secret", "p1", "--grace", "24h")
    assert rotated["identity_secret"] != first["identity_secret"]
    assert "previous_secret_expires_at" in rotated


def test_tokens_and_agents(db):
    hal(db, "projects", "create", "--app-id", "p1")
    token = hal(db, "tokens", "create", "--app-id", "p1")
    assert token["token"].startswith("hal_")
    agent = hal(
        db, "agents", "create", "--app-id", "p1", "--email", "Sam@Acme.com", "--password-stdin",
        input="a long enough password\n",
    )  # fmt: skip
    assert agent["email"] == "sam@acme.com"
    weak = hal(
        db, "agents", "create", "--app-id", "p1", "--email", "x@acme.com", "--password-stdin",
        input="short\n", ok=False,
    )  # fmt: skip
    assert weak.exit_code == 1


def test_a_token_has_the_label_it_was_made_with(db):
    hal(db, "projects", "create", "--app-id", "p1")
    made = hal(db, "tokens", "create", "--app-id", "p1", "--admin", "--label", "CI deploys")
    assert (made["scope"], made["label"]) == ("admin", "CI deploys")
    too_long = hal(db, "tokens", "create", "--app-id", "p1", "--label", "x" * 256, ok=False)
    assert json.loads(too_long.stderr)["error"]["field"] == "label"


def test_agents_have_roles_and_the_last_admin_stays(db):
    hal(db, "projects", "create", "--app-id", "p1")
    password = "a long enough password\n"
    first = hal(db, "agents", "create", "--app-id", "p1", "--email", "a@acme.com",
                "--password-stdin", input=password)  # fmt: skip
    assert first["role"] == "admin"  # a project's first agent
    second = hal(db, "agents", "create", "--app-id", "p1", "--email", "b@acme.com",
                 "--password-stdin", "--role", "admin", input=password)  # fmt: skip
    assert second["role"] == "admin"
    demoted = hal(db, "agents", "update", "--app-id", "p1", "--email", "a@acme.com",
                  "--role", "agent")  # fmt: skip
    assert demoted["role"] == "agent"
    last = hal(db, "agents", "update", "--app-id", "p1", "--email", "b@acme.com",
               "--role", "agent", ok=False)  # fmt: skip
    assert json.loads(last.stderr)["error"]["code"] == "last_admin"
    listed = hal(db, "agents", "list", "--app-id", "p1")
    assert [(a["email"], a["role"]) for a in listed] == [("a@acme.com", "agent"),
                                                        ("b@acme.com", "admin")]  # fmt: skip


def test_errors_are_json_with_a_code_and_exit_1(db):
    result = hal(db, "projects", "show", "nope", ok=False)
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["code"] == "unknown_app"
    hal(db, "projects", "create", "--app-id", "p1")
    taken = hal(db, "projects", "create", "--app-id", "p1", ok=False)
    assert json.loads(taken.stderr)["error"]["code"] == "app_id_taken"


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("24h", 86400), ("7d", 604800), ("0", 0)]
)
def test_durations(text, seconds):
    assert parse_duration(text).total_seconds() == seconds


def test_a_revoked_token_is_refused(db):
    import asyncio

    from hal.db.engine import Database
    from hal.services.projects import project_for_api_token

    hal(db, "projects", "create", "--app-id", "p1")
    token = hal(db, "tokens", "create", "--app-id", "p1")["token"]
    assert hal(db, "tokens", "revoke", "--app-id", "p1", input=token + "\n")["revoked"] is True
    again = hal(db, "tokens", "revoke", "--app-id", "p1", input=token + "\n", ok=False)
    assert json.loads(again.stderr)["error"]["code"] == "unknown_token"

    async def lookup():
        database = Database(db)
        try:
            return await database.transaction(
                lambda s: project_for_api_token(session=s, token=token)
            )
        finally:
            await database.dispose()

    assert asyncio.run(lookup()) is None


def test_only_serve_and_migrate_change_the_schema(tmp_path):
    fresh = f"sqlite:///{tmp_path / 'fresh.db'}"
    refused = hal(fresh, "projects", "create", "--name", "Acme", ok=False)
    assert refused.exit_code == 1
    error = json.loads(refused.stderr)["error"]
    assert error["code"] == "schema_not_current" and "hal migrate" in error["message"]
    assert hal(fresh, "migrate")["schema"] == "current"
    assert hal(fresh, "projects", "create", "--name", "Acme")["name"] == "Acme"


def test_db_revision_writes_the_migration_a_model_change_needs(tmp_path, monkeypatch):
    import sqlalchemy as sa

    from hal.db import migrate as migrations
    from hal.db.models import Base

    versions = tmp_path / "migrations" / "versions"
    shutil.copytree(migrations.MIGRATIONS, tmp_path / "migrations")
    monkeypatch.setattr(migrations, "MIGRATIONS", tmp_path / "migrations")
    head = migrations.head_revision()
    column = sa.Column("nickname", sa.String(64), nullable=True)
    Base.metadata.tables["contacts"].append_column(column)
    try:
        result = runner.invoke(app, ["db", "revision", "-m", "add a column"])
    finally:
        Base.metadata.tables["contacts"]._columns.remove(column)
    assert result.exit_code == 0, result.output
    written = Path(result.stdout.strip().splitlines()[-1])
    assert written.parent == versions and written.exists()
    text = written.read_text()
    assert f"Revises: {head}" in text
    assert "add_column" in text and "nickname" in text
    assert migrations.head_revision() != head

"""README "Batch writes and imports": CSV imports of contacts and companies, over HTTP
(POST /api/projects/{app_id}/imports) and with `hal import`, on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json

import httpx
import pytest
from typer.testing import CliRunner

from hal.app import create_app
from hal.cli import app as cli
from hal.config import Settings
from hal.db.models import Change
from tests.factories import make_project, make_token
from tests.imports import finished
from tests.integration.conftest import TeamClient
from tests.integration.test_change_log import changes as all_changes

CONTACTS = (
    "user_id,email,name,company_id,company_name,stage,metadata.plan,metadata.seats\n"
    "u1,ann@example.com,Ann,acme,Acme Inc,Trial,pro,5\n"
    "u2,bob@example.com,Bob,acme,,,free,\n"
    ",cy@example.com,Cy,beta,Beta,,,\n"
)


async def upload(
    team: TeamClient,
    text: str | bytes,
    kind: str = "contacts",
    *,
    dry_run: bool = False,
    content_type: str = "text/csv",
) -> httpx.Response:
    """Upload the file and wait for its job to end: GET's answer (or the refusal)."""
    body = text.encode() if isinstance(text, str) else text
    params = {"kind": kind, **({"dry_run": "true"} if dry_run else {})}
    answer = await team.http.post(
        f"/api/projects/{team.project.app_id}/imports",
        params=params,
        content=body,
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": content_type},
    )
    return await finished(team.http, answer, team.token)


async def changes(database, project, after: int | None = 0) -> list[Change]:
    """The changes the rows made (an import's own end, `import.completed`, left out)."""
    logged = await all_changes(database, project, after or 0)
    return [change for change in logged if not change.type.startswith("import.")]


def counts(answer: httpx.Response) -> tuple[int, int, int, int]:
    assert answer.status_code == 200, answer.text
    body = answer.json()
    return body["created"], body["updated"], body["unchanged"], body["failed"]


async def test_contacts_are_imported_with_companies_stages_and_metadata(team, inspect):
    assert counts(await upload(team, CONTACTS)) == (3, 0, 0, 0)
    contacts = await inspect.contacts(team.project.app_id)
    assert [(c.user_id, c.email, c.name, c.metadata_) for c in contacts] == [
        ("u1", "ann@example.com", "Ann", {"plan": "pro", "seats": "5"}),
        ("u2", "bob@example.com", "Bob", {"plan": "free"}),
        (None, "cy@example.com", "Cy", {}),
    ]
    companies = await inspect.companies(team.project.app_id)
    assert [(c.external_id, c.name, c.stage) for c in companies] == [
        ("acme", "Acme Inc", "Trial"),
        ("beta", "Beta", None),
    ]
    ids = {c.user_id or c.email: c.id for c in contacts}
    assert await inspect.links(team.project.app_id) == [
        (ids["u1"], "acme"), (ids["u2"], "acme"), (ids["cy@example.com"], "beta")
    ]  # fmt: skip


async def test_a_rerun_creates_nothing_and_a_changed_row_is_updated(team, database):
    assert counts(await upload(team, CONTACTS)) == (3, 0, 0, 0)
    logged = len(await changes(database, team.project))
    assert counts(await upload(team, CONTACTS)) == (0, 0, 3, 0)
    assert len(await changes(database, team.project)) == logged  # nothing changed, nothing logged
    edited = CONTACTS.replace("Bob,acme", "Robert,acme")
    last = (await all_changes(database, team.project))[-1].id
    assert counts(await upload(team, edited)) == (0, 1, 2, 0)
    [update] = await changes(database, team.project, after=last)
    assert update.type == "contact.updated"
    assert update.data["changed"]["name"] == {"old": "Bob", "new": "Robert"}


async def test_imports_record_their_changes_like_any_write(team, database):
    await upload(team, "user_id,company_id\nu1,acme\n")
    assert [c.type for c in await changes(database, team.project)] == [
        "contact.created", "contact.company_linked", "company.created"
    ]  # fmt: skip


async def test_a_dry_run_counts_and_writes_nothing(team, inspect, database):
    answer = await upload(team, CONTACTS + "u4,not-an-email,,,,,,\n", dry_run=True)
    assert counts(answer) == (3, 0, 0, 1)
    assert answer.json()["dry_run"] is True
    assert await inspect.contacts(team.project.app_id) == []
    assert await inspect.companies(team.project.app_id) == []
    assert await changes(database, team.project) == []


async def test_a_bad_row_fails_alone_and_is_reported_with_its_line(team, inspect):
    text = (
        "user_id,email,name\n"
        "u1,ann@example.com,Ann\n"
        "u2,bob@example.com,Bob,extra\n"  # too many fields
        "u3,not-an-email,Cy\n"
        '"u4","dee@example.com","Dee\nwith a line break"\n'
        "u5,,\n"
    )
    answer = await upload(team, text)
    assert counts(answer) == (3, 0, 0, 2)
    failures = [(f["line"], f["code"], f["field"]) for f in answer.json()["failures"]]
    assert failures == [(3, "wrong_field_count", "row"), (4, "invalid_email", "email")]
    assert answer.json()["failures"][1]["row"] == {"user_id": "u3", "email": "not-an-email",
                                                   "name": "Cy"}  # fmt: skip
    users = [c.user_id for c in await inspect.contacts(team.project.app_id)]
    assert users == ["u1", "u4", "u5"]


async def test_a_row_failing_after_it_wrote_leaves_nothing_behind(new_project, team_for, inspect):
    project = await new_project(stage_mode="forward_only", stages=["Lead", "Customer"])
    team = await team_for(project)
    text = "user_id,company_id,stage\nu1,acme,Lead\nu2,beta,Unknown\nu3,acme,Customer\n"
    answer = await upload(team, text)
    assert counts(answer) == (2, 0, 0, 1)
    [failure] = answer.json()["failures"]
    assert (failure["line"], failure["code"], failure["field"]) == (3, "unknown_stage", "stage")
    assert [c.user_id for c in await inspect.contacts(project.app_id)] == ["u1", "u3"]
    assert [c.external_id for c in await inspect.companies(project.app_id)] == ["acme"]


# A chunk reads once which of its people exist and its companies (db/store/lookahead.py);
# these rows must still see what the chunk's earlier rows wrote.


async def test_a_person_named_again_in_the_same_chunk_is_found(team, inspect):
    text = "user_id,email,name\nu1,,Ann\nu1,ann@example.com,\n,ann@example.com,Annie\n"
    assert counts(await upload(team, text)) == (1, 2, 0, 0)
    [contact] = await inspect.contacts(team.project.app_id)
    assert (contact.user_id, contact.email, contact.name) == ("u1", "ann@example.com", "Annie")


async def test_a_company_is_read_as_an_earlier_row_of_the_chunk_wrote_it(
    new_project, team_for, database, inspect
):
    project = await new_project(stage_mode="forward_only", stages=["Lead", "Customer"])
    team = await team_for(project)
    text = "user_id,company_id,company_name,stage\nu1,acme,Acme,Lead\nu2,acme,Acme Corp,Customer\n"
    assert counts(await upload(team, text)) == (2, 0, 0, 0)
    logged = await changes(database, project)
    moves = [(c.data["previous"], c.data["stage"]) for c in logged
             if c.type == "company.stage_changed"]  # fmt: skip
    assert moves == [(None, "Lead"), ("Lead", "Customer")]
    [renamed] = [c for c in logged if c.type == "company.updated"]
    assert renamed.data["changed"]["name"] == {"old": "Acme", "new": "Acme Corp"}
    backwards = "user_id,company_id,stage\nu3,acme,Lead\n"
    assert counts(await upload(team, backwards)) == (1, 0, 0, 0)  # forward_only: kept Customer
    assert [c.stage for c in await inspect.companies(project.app_id)] == ["Customer"]


async def test_a_company_made_by_a_failed_row_is_made_again_by_the_next(
    new_project, team_for, inspect, database
):
    team = await team_for(await new_project(stage_mode="forward_only", stages=["Lead"]))
    text = "user_id,company_id,company_name,stage\nu1,newco,New Co,Unknown\nu2,newco,New Co,\n"
    answer = await upload(team, text)
    assert counts(answer) == (1, 0, 0, 1)
    [company] = await inspect.companies(team.project.app_id)
    [contact] = await inspect.contacts(team.project.app_id)
    assert await inspect.links(team.project.app_id) == [(contact.id, "newco")]
    created = [c for c in await changes(database, team.project) if c.type == "company.created"]
    assert [c.data["id"] for c in created] == [company.external_id]


async def test_an_email_merged_into_another_contact_reaches_it(team, inspect):
    people = "user_id,email\n,old@example.com\nb,new@example.com\n"
    assert counts(await upload(team, people)) == (2, 0, 0, 0)
    ids = {c.email: c.id for c in await inspect.contacts(team.project.app_id)}
    merged = await team.post(
        "/contacts/merge", {"from": ids["old@example.com"], "into": ids["new@example.com"]}
    )
    assert merged.status_code == 200, merged.text
    assert counts(await upload(team, "email,name\nold@example.com,Bea\n")) == (0, 1, 0, 0)
    named = [(c.id, c.name) for c in await inspect.contacts(team.project.app_id) if c.name]
    assert named == [(ids["new@example.com"], "Bea")]


async def test_a_row_merging_a_lead_is_written_on_its_own_and_the_chunk_goes_on(
    team, inspect, database
):
    assert counts(await upload(team, "user_id,email\nu1,\n,lead@example.com\n")) == (2, 0, 0, 0)
    text = (
        "user_id,email,name\n"
        "u1,lead@example.com,Merged\n"  # u1 takes the lead's email: the lead merges into it
        "u2,u2@example.com,Next\n"
        ",lead@example.com,Again\n"  # the email now reaches u1
    )
    assert counts(await upload(team, text)) == (1, 2, 0, 0)
    contacts = await inspect.contacts(team.project.app_id)
    assert [(c.user_id, c.email, c.name) for c in contacts] == [
        ("u1", "lead@example.com", "Again"), ("u2", "u2@example.com", "Next")
    ]  # fmt: skip
    assert [c.type for c in await changes(database, team.project)][2:] == [
        "contact.merged", "contact.updated", "contact.created", "contact.updated"
    ]  # fmt: skip


async def test_companies_are_imported_and_counted(team, inspect):
    text = "id,name,stage,metadata.tier\nacme,Acme,Trial,gold\nbeta,,,\n"
    assert counts(await upload(team, text, "companies")) == (2, 0, 0, 0)
    assert counts(await upload(team, text, "companies")) == (0, 0, 2, 0)
    renamed = text.replace("acme,Acme,Trial", "acme,Acme Corp,Trial")
    assert counts(await upload(team, renamed, "companies")) == (0, 1, 1, 0)
    companies = await inspect.companies(team.project.app_id)
    assert [(c.external_id, c.name, c.stage, c.metadata_) for c in companies] == [
        ("acme", "Acme Corp", "Trial", {"tier": "gold"}),
        ("beta", None, None, {}),
    ]
    assert companies[0].stage_source == "api"


async def test_a_byte_order_mark_is_accepted(team, inspect):
    assert counts(await upload(team, b"\xef\xbb\xbfuser_id\nu1\n")) == (1, 0, 0, 0)
    assert [c.user_id for c in await inspect.contacts(team.project.app_id)] == ["u1"]


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        (b"user_id,name\nu1,Ann\nu2,Ren\xe9e\n", "invalid_encoding", "file"),  # Latin-1
        (b"", "missing_header", "header"),
        (b"\n\n", "missing_header", "header"),
        (b"name,metadata.plan\nAnn,pro\n", "missing_column", "user_id"),
        (b"user_id,phone\nu1,555\n", "unknown_column", "phone"),
        (b"user_id,user_id\nu1,u1\n", "duplicate_column", "user_id"),
        (b"user_id,metadata.\nu1,x\n", "invalid_column", "metadata."),
    ],
)
async def test_a_file_with_a_structural_fault_is_refused_whole(team, inspect, body, code, field):
    answer = await upload(team, body)
    assert answer.status_code == 422, answer.text
    assert (answer.json()["error"]["code"], answer.json()["error"]["field"]) == (code, field)
    assert await inspect.contacts(team.project.app_id) == []


async def test_the_bad_encodings_line_is_named(team):
    answer = await upload(team, b"user_id,name\nu1,Ann\nu2,Ren\xe9e\n")
    assert "line 3" in answer.json()["error"]["message"]


async def test_an_import_is_csv_for_the_projects_token(team, new_project, database):
    assert (await upload(team, CONTACTS, content_type="application/json")).status_code == 415
    assert (await upload(team, CONTACTS, kind="people")).status_code == 422
    other = await new_project()
    team.token = await make_token(database, other)
    assert (await upload(team, CONTACTS)).status_code == 403


async def test_an_import_over_its_size_limit_is_413(database, inspect):
    project = await make_project(database)
    token = await make_token(database, project)
    settings = Settings(database_url=database.url, max_import_bytes=4096)
    app = create_app(settings, database=database)
    big = "user_id,name\n" + "".join(f"u{i},{'n' * 40}\n" for i in range(200))
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://hal.test"
    ) as http:
        answer = await http.post(
            f"/api/projects/{project.app_id}/imports?kind=contacts",
            content=big.encode(),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        )
        assert answer.status_code == 413
        assert answer.json()["error"]["field"] == "body"
        small = await http.post(
            f"/api/projects/{project.app_id}/imports?kind=contacts",
            content=b"user_id\nu1\n",
            headers={"Authorization": f"Bearer {token}", "Content-Type": "text/csv"},
        )
        assert counts(await finished(http, small, token)) == (1, 0, 0, 0)
    assert len(await inspect.contacts(project.app_id)) == 1


async def test_an_import_larger_than_the_general_body_limit_is_accepted(team, inspect):
    text = "user_id,name\n" + "".join(f"u{i},{'n' * 60}\n" for i in range(1500))
    assert len(text) > 64 * 1024
    assert counts(await upload(team, text)) == (1500, 0, 0, 0)
    assert len(await inspect.contacts(team.project.app_id)) == 1500


# The command line, on the same databases.

runner = CliRunner()


def hal_import(database_url: str, *args: str):
    result = runner.invoke(cli, ["import", *args, "--database-url", database_url])
    return result


def test_hal_import_prints_the_counts_and_writes_the_failed_rows(
    database_url, cli_project, tmp_path
):
    source = tmp_path / "contacts.csv"
    source.write_text(CONTACTS + "u4,not-an-email,Dee,,,,,\nu5,x@example.com\n")
    errors = tmp_path / "errors.csv"
    result = hal_import(database_url, "contacts", str(source), "--app-id", cli_project,
                        "--errors", str(errors))  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "created": 3, "updated": 0, "unchanged": 0, "failed": 2
    }  # fmt: skip
    rows = list(csv.DictReader(io.StringIO(errors.read_text())))
    assert [(r["line"], r["user_id"], r["email"]) for r in rows] == [
        ("5", "u4", "not-an-email"), ("6", "u5", "x@example.com")
    ]  # fmt: skip
    assert rows[0]["error"].startswith("invalid_email")
    assert rows[1]["error"].startswith("wrong_field_count")
    again = hal_import(database_url, "contacts", str(source), "--app-id", cli_project)
    assert json.loads(again.stdout) == {"created": 0, "updated": 0, "unchanged": 3, "failed": 2}


def test_hal_import_dry_run_writes_nothing(database_url, cli_project, tmp_path):
    source = tmp_path / "companies.csv"
    source.write_text("id,name\nacme,Acme\n")
    dry = hal_import(database_url, "companies", str(source), "--app-id", cli_project, "--dry-run")
    assert json.loads(dry.stdout) == {"created": 1, "updated": 0, "unchanged": 0, "failed": 0}
    real = hal_import(database_url, "companies", str(source), "--app-id", cli_project)
    assert json.loads(real.stdout)["created"] == 1  # the dry run left nothing behind


def test_hal_import_refuses_a_bad_file_with_a_clear_error(database_url, cli_project, tmp_path):
    source = tmp_path / "bad.csv"
    source.write_bytes(b"user_id,nickname\nu1,x\n")
    result = hal_import(database_url, "contacts", str(source), "--app-id", cli_project)
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["code"] == "unknown_column"
    source.write_bytes(b"user_id\n\xff\n")
    result = hal_import(database_url, "contacts", str(source), "--app-id", cli_project)
    assert json.loads(result.stderr)["error"]["code"] == "invalid_encoding"
    unknown = hal_import(database_url, "contacts", str(source), "--app-id", "no_such_app")
    assert unknown.exit_code == 1


@pytest.fixture
async def cli_project(database) -> str:
    return (await make_project(database)).app_id

"""A CRM export as it comes (tests/crm_export.py: a byte order mark, CRLF, the CRM's own
headers, columns HAL has no field for, quoted commas, multi-line notes, unicode, invalid
emails) imports with its own headers, over HTTP and with `hal import`; and a chunk's held,
set-based writes leave what the team's identify leaves row by row. On SQLite and PostgreSQL.

HAL_TEST_EXPORT_ROWS sets the export's size (3,000 rows here; 51,051 is the real one's).
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
from typing import Any

from sqlalchemy import select

from hal.db.models import Change, Company, Contact, ContactCompany, Project, StageChange
from hal.domain.csv_import import ImportKind
from hal.domain.limits import Limits
from hal.services import imports
from tests.crm_export import write_export
from tests.factories import make_project
from tests.imports import finished
from tests.integration.conftest import TeamClient
from tests.integration.test_imports import hal_import

ROWS = int(os.environ.get("HAL_TEST_EXPORT_ROWS", "3000"))


async def test_a_crm_export_imports_over_http_with_its_own_headers(team, inspect, tmp_path):
    shape = write_export(tmp_path / "export.csv", ROWS)
    answer = await team.http.post(
        f"/api/projects/{team.project.app_id}/imports",
        params={"kind": "contacts", "keep_unknown_columns": "true"},
        content=(tmp_path / "export.csv").read_bytes(),
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": "text/csv"},
    )
    done = (await finished(team.http, answer, team.token, timeout=600)).json()
    assert (done["status"], done["rows_total"], done["rows_done"]) == ("done", ROWS, ROWS)
    assert (done["created"], done["updated"], done["unchanged"], done["failed"]) == (
        shape.created, 0, 0, shape.failed
    )  # fmt: skip
    assert [f["line"] for f in done["failures"]] == shape.failed_lines
    assert {f["code"] for f in done["failures"]} == {"invalid_email"}
    assert {f["field"] for f in done["failures"]} == {"Email Address"}
    contacts = {c.user_id or c.email: c for c in await inspect.contacts(team.project.app_id)}
    assert len(contacts) == shape.created
    quoted = contacts["U000012"]  # a note over three lines, with quotes and a comma
    assert quoted.metadata_["notes"] == (
        'Called on Monday.\r\nInterested in the "Pro" plan, wants a demo.\r\nFollow up: Q3'
    )
    blank = contacts["U000002"]  # a note with an empty line inside
    assert (
        blank.metadata_["notes"]
        == "Línea 1\r\nLínea 2, con coma\r\n\r\nLínea 4 después de una vacía"
    )
    assert (blank.name, blank.metadata_["city"]) == ("Łukasz Müller", "Kraków")
    assert contacts["U000000"].metadata_["tags"] == "vip, beta"
    assert contacts["U000011"].email == "User.11@Example.COM"  # kept as written, trimmed
    assert contacts["U000011"].email_normalized == "user.11@example.com"
    assert "user.7@example.com" in contacts  # no user_id: named by its email
    companies = await inspect.companies(team.project.app_id)
    named = {c.external_id: c for c in companies}
    assert named["C00001"].name == "Globex 1 GmbH" and named["C00001"].stage is not None
    assert all(c.metadata_ == {} for c in companies)


async def test_hal_import_reads_a_crm_export_with_a_mapping_and_kept_columns(
    database, database_url, tmp_path, inspect
):
    project = await make_project(database)
    shape = write_export(tmp_path / "export.csv", min(ROWS, 1000))
    errors = tmp_path / "failed.csv"
    result = await asyncio.to_thread(  # the command runs its own event loop
        hal_import, database_url, "contacts", str(tmp_path / "export.csv"), "--app-id",
        project.app_id, "--keep-unknown-columns", "--map", "Notes=,Plan=metadata.tier",
        "--errors", str(errors),
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "created": shape.created, "updated": 0, "unchanged": 0, "failed": shape.failed
    }  # fmt: skip
    failed = list(csv.DictReader(io.StringIO(errors.read_text(encoding="utf-8"))))
    assert [int(row["line"]) for row in failed] == shape.failed_lines
    assert list(failed[0])[:4] == ["line", "User ID", "Email Address", "Full Name"]
    contact = next(c for c in await inspect.contacts(project.app_id) if c.user_id == "U000002")
    assert "notes" not in contact.metadata_ and contact.metadata_["tier"] == "Enterprise"


# The same result as row by row: the same rows imported into two projects, one with the
# chunk's look-ahead (reads once, writes held and made set-based) and one without it, where
# every row reads and writes on the database as a lone identify does.


def edited(text: str) -> str:
    """The export again, as a CRM would export it a week later: renamed people, stages
    moved on, people matched by email alone, new people on old companies."""
    rows = list(csv.reader(io.StringIO(text, newline="")))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(rows[0])
    stages = ["Lead", "Marketing Qualified Lead", "Sales Qualified Lead", "Opportunity",
              "Customer"]  # fmt: skip
    for i, row in enumerate(rows[1:]):
        if i % 5 == 0:
            row[2] += " Jr"
        if i % 7 == 3 and row[6]:
            row[6] = stages[(stages.index(row[6]) + 1) % len(stages)]
        if i % 17 == 0:
            row[0] = ""
        writer.writerow(row)
    for i in range(len(rows), len(rows) + 50):
        writer.writerow([f"U{i:06d}", f"new.{i}@example.com", "New Person", "", f"C{i % 20:05d}",
                         "", "Customer", "", "", "Pro", "", "", ""])  # fmt: skip
    writer.writerow(["U000001", "user.7@example.com", "Takes a lead", *[""] * 10])
    return out.getvalue()


async def import_file(database, team: TeamClient, text: str) -> None:
    file = imports.read_import(ImportKind.CONTACTS, io.StringIO(text), Limits(),
                               keep_unknown=True)  # fmt: skip
    await imports.import_rows(db=database, app_id=team.project.app_id, file=file,
                              limits=Limits(), chunk_rows=100)  # fmt: skip


NOT_COMPARED = {"id", "contact_id", "from", "into", "created_at", "last_seen_at"}  # ids, times


async def held(database, project: Any) -> dict[str, Any]:
    """What a project holds, without ids and times."""
    async with database.sessionmaker() as session:

        async def rows(query: Any) -> list[Any]:
            return [tuple(row) for row in await session.execute(query)]

        of = Project.app_id == project.app_id
        contacts = await rows(
            select(Contact.user_id, Contact.email, Contact.name, Contact.metadata_,
                   Contact.search_metadata, Contact.search_name, Contact.verified,
                   Contact.version)
            .join(Project).where(of).order_by(Contact.id)
        )  # fmt: skip
        companies = await rows(
            select(Company.external_id, Company.name, Company.stage, Company.stage_source,
                   Company.metadata_, Company.guarded, Company.version)
            .join(Project).where(of).order_by(Company.id)
        )  # fmt: skip
        links = await rows(
            select(Contact.user_id, Contact.email, Company.external_id)
            .join(ContactCompany, ContactCompany.contact_id == Contact.id)
            .join(Company, Company.id == ContactCompany.company_id)
            .join(Project, Project.id == Contact.project_id).where(of)
            .order_by(Contact.id, Company.external_id)
        )  # fmt: skip
        stages = await rows(
            select(Company.external_id, StageChange.value, StageChange.previous)
            .join(Company, Company.id == StageChange.company_id)
            .join(Project, Project.id == Company.project_id).where(of)
            .order_by(StageChange.id)
        )  # fmt: skip
        logged = await rows(
            select(Change.type, Change.data).join(Project).where(of).order_by(Change.seq)
        )
    changes = [
        (type_, {k: v for k, v in data.items() if k not in NOT_COMPARED}) for type_, data in logged
    ]
    return {"contacts": contacts, "companies": companies, "links": links, "stages": stages,
            "changes": changes}  # fmt: skip


async def test_held_set_based_writes_leave_what_row_by_row_identify_leaves(
    database, new_project, team_for, tmp_path, monkeypatch
):
    write_export(tmp_path / "export.csv", 600, companies=20)
    first = (tmp_path / "export.csv").read_text(encoding="utf-8-sig")
    files = [first, first, edited(first)]
    stages = {"stage_mode": "forward_only", "stages": ["Lead", "Marketing Qualified Lead",
              "Sales Qualified Lead", "Opportunity", "Customer"]}  # fmt: skip
    ahead = await team_for(await new_project(**stages))
    for text in files:
        await import_file(database, ahead, text)
    row_by_row = await team_for(await new_project(**stages))

    async def no_look_ahead(tx: Any, **_: Any) -> None:
        tx.lookahead = None  # each row reads and writes on the database itself

    monkeypatch.setattr(imports, "look_ahead", no_look_ahead)
    for text in files:
        await import_file(database, row_by_row, text)
    state = await held(database, ahead.project)
    assert state == await held(database, row_by_row.project)
    types = [type_ for type_, _ in state["changes"]]
    assert {"contact.merged", "company.stage_changed", "contact.updated"} <= set(types)

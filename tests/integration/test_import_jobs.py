"""README "Batch writes and imports": an upload is a job. The POST answers 202 with it, GET
follows it to its counts and failed rows, its end is a change, and any process takes over a
job whose process stopped, going on after the rows already done (on SQLite and PostgreSQL;
the restart with real server processes is at the end)."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import func, select, update

from hal.db.models import Contact, ImportJob, Project
from hal.domain.csv_import import ImportKind
from hal.domain.limits import Limits
from hal.services import import_jobs
from hal.services.import_jobs import (
    ImportOptions,
    claim_job,
    importing_projects,
    run_claimed,
)
from tests.crm_export import write_export
from tests.factories import make_project, make_token
from tests.imports import ended, finished
from tests.integration.test_change_log import changes
from tests.integration.test_webhook_delivery import drop_endpoint, endpoint_for
from tests.integration.test_webhooks import delivering
from tests.receiver import running_receiver
from tests.servers import Server

LEASE = timedelta(seconds=30)


def people(rows: int, start: int = 0) -> str:
    return "user_id,email,name\n" + "".join(
        f"u{i},u{i}@example.com,User {i}\n" for i in range(start, start + rows)
    )


async def post(team, text: str, **params: str) -> httpx.Response:
    answer: httpx.Response = await team.http.post(
        f"/api/projects/{team.project.app_id}/imports",
        params={"kind": "contacts", **params},
        content=text.encode(),
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": "text/csv"},
    )
    return answer


async def queue(database, team, text: str, *, dry_run: bool = False) -> int:
    """A job queued as the POST queues it, but left for the test to run."""
    job = await import_jobs.submit_import(
        database, app_id=team.project.app_id, kind=ImportKind.CONTACTS,
        body=text.encode(), options=ImportOptions(), dry_run=dry_run, limits=Limits(),
    )  # fmt: skip
    return job.id


async def contact_count(database, app_id: str) -> int:
    async with database.sessionmaker() as session:
        found = await session.execute(
            select(func.count()).select_from(Contact).join(Project).where(Project.app_id == app_id)
        )
        return int(found.scalar_one())


async def test_an_upload_answers_202_with_its_job_and_get_follows_it_to_the_end(team):
    answer = await post(team, people(3) + "u3,not-an-email,Dee\n")
    assert answer.status_code == 202, answer.text
    job = answer.json()
    assert answer.headers["location"] == f"/api/projects/{team.project.app_id}/imports/{job['id']}"
    assert (job["status"], job["kind"], job["rows_total"], job["failures"]) == (
        "queued", "contacts", 4, None
    )  # fmt: skip
    done = (await finished(team.http, answer, team.token)).json()
    assert (done["status"], done["rows_done"], done["rows_total"]) == ("done", 4, 4)
    assert (done["created"], done["updated"], done["unchanged"], done["failed"]) == (3, 0, 0, 1)
    [failure] = done["failures"]
    assert (failure["line"], failure["code"], failure["field"]) == (5, "invalid_email", "email")
    assert done["started_at"] and done["finished_at"] and done["error"] is None


async def test_a_job_is_read_only_under_its_own_project(team, new_project, database):
    job = (await post(team, people(1))).json()
    await finished(team.http, await post(team, people(1, 1)), team.token)
    other = await new_project()
    token = await make_token(database, other)
    elsewhere = await team.http.get(
        f"/api/projects/{other.app_id}/imports/{job['id']}",
        headers={"Authorization": f"Bearer {token}"},
    )
    assert elsewhere.status_code == 404
    assert elsewhere.json()["error"] == {
        "code": "unknown_import", "message": f"no import {job['id']} in this project",
        "field": "import_id",
    }  # fmt: skip


async def test_a_refused_file_makes_no_job(team, database):
    async with database.sessionmaker() as session:
        before = (await session.execute(select(func.count()).select_from(ImportJob))).scalar_one()
    answer = await post(team, "user_id,nickname\nu1,x\n")
    assert answer.status_code == 422
    assert answer.json()["error"]["code"] == "unknown_column"
    async with database.sessionmaker() as session:
        after = (await session.execute(select(func.count()).select_from(ImportJob))).scalar_one()
    assert after == before


async def test_the_end_of_an_import_is_a_change_with_its_counts(team, database):
    await finished(team.http, await post(team, people(2) + ",bad,\n"), team.token)
    [ended] = [c for c in await changes(database, team.project) if c.type == "import.completed"]
    assert {k: ended.data[k] for k in ("kind", "status", "source", "rows", "created",
                                       "failed")} == {
        "kind": "contacts", "status": "done", "source": "upload", "rows": 3, "created": 2,
        "failed": 1,
    }  # fmt: skip
    await finished(team.http, await post(team, people(2), dry_run="true"), team.token)
    logged = [c.type for c in await changes(database, team.project)]
    assert logged.count("import.completed") == 1  # a dry run changed nothing


async def test_headers_of_a_crm_export_are_understood_with_a_mapping_and_kept_columns(
    team, inspect
):
    export = (
        "User ID,Email Address,Full Name,Company ID,Company Name,Lifecycle Stage,Phone Number,"
        "Customer Tier,Internal Notes\r\n"
        'U1,ann@example.com,"Lee, Ann",C1,"Acme, Inc.",Lead,+1 555 0100,gold,"two\r\nlines"\r\n'
    )
    refused = await post(team, export)
    assert refused.status_code == 422
    assert refused.json()["error"]["field"] == "Phone Number"
    answer = await team.http.post(
        f"/api/projects/{team.project.app_id}/imports",
        params=[("kind", "contacts"), ("keep_unknown_columns", "true"),
                ("map", "Customer Tier=metadata.tier"), ("map", "Internal Notes=")],
        content=export.encode(),
        headers={"Authorization": f"Bearer {team.token}", "Content-Type": "text/csv"},
    )  # fmt: skip
    done = (await finished(team.http, answer, team.token)).json()
    assert (done["created"], done["failed"]) == (1, 0)
    [contact] = await inspect.contacts(team.project.app_id)
    assert (contact.user_id, contact.email, contact.name) == ("U1", "ann@example.com", "Lee, Ann")
    assert contact.metadata_ == {"phone_number": "+1 555 0100", "tier": "gold"}
    [company] = await inspect.companies(team.project.app_id)
    assert (company.external_id, company.name, company.stage) == ("C1", "Acme, Inc.", "Lead")


async def test_a_failed_rows_field_is_the_files_own_column(team):
    export = "User ID,Email Address\nU1,not-an-email\n"
    done = (await finished(team.http, await post(team, export), team.token)).json()
    [failure] = done["failures"]
    assert (failure["code"], failure["field"]) == ("invalid_email", "Email Address")
    assert failure["row"] == {"User ID": "U1", "Email Address": "not-an-email"}


async def test_a_bad_mapping_is_refused_naming_it(team):
    answer = await post(team, people(1), map="name=nickname")
    assert answer.status_code == 422
    assert (answer.json()["error"]["code"], answer.json()["error"]["field"]) == (
        "invalid_mapping", "map"
    )  # fmt: skip


# Claims and leases, run in this process.


async def test_one_process_claims_a_job_and_another_finds_none(team, database):
    job_id = await queue(database, team, people(2))
    first = await claim_job(database, owner="a", lease=LEASE)
    second = await claim_job(database, owner="b", lease=LEASE)
    assert first is not None and first.job_id == job_id
    assert second is None or second.job_id != job_id
    assert first.project_id in await importing_projects(database)
    await run_claimed(database, first, limits=Limits(), lease=LEASE)
    if second is not None:
        await run_claimed(database, second, limits=Limits(), lease=LEASE)


async def test_a_job_let_go_between_chunks_is_taken_over_and_finished_once(team, database):
    job_id = await queue(database, team, people(25) + "u99,nope,\n")
    claim = await claim_job(database, owner="a", lease=LEASE)
    assert claim is not None and claim.job_id == job_id
    chunks = iter([False, False, True])  # two chunks, then the process stops
    await run_claimed(database, claim, limits=Limits(), lease=LEASE, chunk_rows=10,
                      stopping=lambda: next(chunks))  # fmt: skip
    half = await job_view(database, team, job_id)
    assert (half.status, half.rows_done, half.counts.created) == ("running", 20, 20)
    again = await claim_job(database, owner="b", lease=LEASE)  # the lease was let go: at once
    assert again is not None and (again.job_id, again.rows_done) == (job_id, 20)
    await run_claimed(database, again, limits=Limits(), lease=LEASE, chunk_rows=10)
    done = await job_view(database, team, job_id)
    assert (done.status, done.rows_done) == ("done", 26)
    assert done.counts.as_dict() == {"created": 25, "updated": 0, "unchanged": 0, "failed": 1}
    assert await contact_count(database, team.project.app_id) == 25
    created = [c for c in await changes(database, team.project) if c.type == "contact.created"]
    assert len(created) == 25  # no row written twice


async def test_a_job_whose_lease_ran_out_is_taken_over_and_its_old_process_stops(team, database):
    job_id = await queue(database, team, people(30))
    stale = await claim_job(database, owner="a", lease=LEASE)
    assert stale is not None and stale.job_id == job_id
    await expire_lease(database, job_id)  # process a stopped answering
    fresh = await claim_job(database, owner="b", lease=LEASE)
    assert fresh is not None and fresh.job_id == job_id
    await run_claimed(database, stale, limits=Limits(), lease=LEASE, chunk_rows=10)
    assert (await job_view(database, team, job_id)).rows_done == 0  # a's chunk was not kept
    await run_claimed(database, fresh, limits=Limits(), lease=LEASE, chunk_rows=10)
    done = await job_view(database, team, job_id)
    assert (done.status, done.counts.created) == ("done", 30)
    assert await contact_count(database, team.project.app_id) == 30


async def test_a_dry_run_job_counts_and_writes_nothing(team, database):
    job_id = await queue(database, team, people(15), dry_run=True)
    claim = await claim_job(database, owner="a", lease=LEASE)
    assert claim is not None and claim.job_id == job_id
    await run_claimed(database, claim, limits=Limits(), lease=LEASE, chunk_rows=10)
    done = await job_view(database, team, job_id)
    assert (done.status, done.rows_done, done.counts.created, done.dry_run) == (
        "done", 15, 15, True
    )  # fmt: skip
    assert await contact_count(database, team.project.app_id) == 0


async def test_a_job_of_a_stopped_command_is_ended_as_abandoned(team, database):
    job_id = await queue(database, team, people(1))
    async with database.engine.begin() as connection:
        await connection.execute(
            update(ImportJob).where(ImportJob.id == job_id).values(source="command")
        )
    claim = await claim_job(database, owner="a", lease=LEASE)
    assert claim is not None
    await run_claimed(database, claim, limits=Limits(), lease=LEASE)
    done = await job_view(database, team, job_id)
    assert done.status == "failed"
    assert done.error is not None and done.error["code"] == "import_abandoned"


async def test_a_projects_webhooks_wait_while_it_imports_and_all_come_after_it(
    team, database, new_project, team_for
):
    other = await team_for(await new_project())
    with running_receiver() as receiver:
        endpoints = [await endpoint_for(database, t.project, receiver.url) for t in (team, other)]
        try:
            await queue(database, team, people(30))
            claim = await claim_job(database, owner="a", lease=LEASE)
            assert claim is not None
            assert claim.project_id in await importing_projects(database)
            async with delivering(database):
                await other.post("/batch", {"items": [{"type": "identify", "user_id": "o1"}]})
                await receiver.wait_for(1)  # another project's webhooks go on meanwhile
                await asyncio.sleep(0.5)
                assert [r.document["type"] for r in receiver.requests] == ["contact.created"]
                await run_claimed(database, claim, limits=Limits(), lease=LEASE)
                await receiver.wait_for(32, timeout=60)
        finally:
            for endpoint in endpoints:
                await drop_endpoint(database, endpoint.id)
    ours = [r.document for r in receiver.requests[1:]]  # sent side by side: in any order
    assert sorted(
        d["data"].get("user_id") or "" for d in ours if d["type"] == "contact.created"
    ) == (sorted(f"u{i}" for i in range(30)))
    [ended] = [d for d in ours if d["type"] == "import.completed"]
    assert (ended["data"]["created"], ended["data"]["rows"], len(ours)) == (30, 30, 31)


async def job_view(database, team, job_id: int) -> import_jobs.JobView:
    view: import_jobs.JobView = await database.run(
        lambda tx: import_jobs.import_job(tx, app_id=team.project.app_id, job_id=job_id)
    )
    return view


async def expire_lease(database, job_id: int) -> None:
    async with database.engine.begin() as connection:
        await connection.execute(
            update(ImportJob)
            .where(ImportJob.id == job_id)
            .values(lease_until=datetime(2000, 1, 1, tzinfo=UTC))
        )


# A real server killed mid-import and started again.

ENV = {"HAL_IMPORT_CHUNK_ROWS": "100", "HAL_IMPORT_LEASE_SECONDS": "2",
       "HAL_IMPORT_POLL_SECONDS": "0.2"}  # fmt: skip


@pytest.mark.server
async def test_a_server_killed_mid_import_resumes_after_restart_and_imports_each_row_once(
    database, database_url, tmp_path, artifacts_dir
):
    project = await make_project(database)
    token = await make_token(database, project)
    shape = write_export(tmp_path / "export.csv", 6000, companies=300)
    body = (tmp_path / "export.csv").read_bytes()
    log = artifacts_dir / f"server-imports-{database.dialect}.log"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    server = Server(database_url, env=ENV, log=log).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            answer = await http.post(
                f"/api/projects/{project.app_id}/imports",
                params={"kind": "contacts", "keep_unknown_columns": "true"},
                content=body,
                headers=headers,
            )
            assert answer.status_code == 202, answer.text
            location = answer.headers["location"]
            done = await progress_between(http, location, headers, 1, shape.rows - 1)
        server.kill()  # SIGKILL: no shutdown, the lease is not let go
    finally:
        server.stop()
    assert 0 < done < shape.rows
    server = Server(database_url, env=ENV, log=log).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            result = (await ended(http, location, token, timeout=180)).json()
    finally:
        server.stop()
    assert result["status"] == "done", result
    assert (result["rows_done"], result["created"], result["failed"]) == (
        shape.rows, shape.created, shape.failed
    )  # fmt: skip
    assert [f["line"] for f in result["failures"]] == shape.failed_lines
    assert await contact_count(database, project.app_id) == shape.created
    logged = await changes(database, project)
    assert sum(1 for c in logged if c.type == "contact.created") == shape.created
    assert [c.type for c in logged].count("import.completed") == 1


async def progress_between(
    http: httpx.AsyncClient, location: str, headers: dict[str, str], low: int, high: int
) -> int:
    """Wait until the job has done between `low` and `high` rows; how many."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        job = (await http.get(location, headers=headers)).json()
        if low <= job["rows_done"] <= high:
            return int(job["rows_done"])
        assert job["rows_done"] < high, f"the import went past {high} rows: {job['status']}"
        await asyncio.sleep(0.01)
    raise AssertionError("the import did not start")

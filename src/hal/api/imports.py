"""Team API: CSV imports as jobs (README "Batch writes and imports"): the upload answers 202
with its job, which a worker of any server process runs; GET follows it to its counts and
failed rows."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response

from hal.api.body import StrictJSONRoute
from hal.api.deps import DatabaseDep, RowId, SettingsDep, TeamProjectDep
from hal.api.errors import error_responses
from hal.domain.csv_header import parse_mapping
from hal.domain.csv_import import ImportKind
from hal.domain.errors import UnsupportedMediaType
from hal.schemas import ImportFailure, ImportJobError, ImportJobOut
from hal.services import import_jobs
from hal.services.import_jobs import ImportOptions, ImportWorker, JobView

router = APIRouter(
    prefix="/api/projects/{app_id}",
    tags=["batch"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)


async def get_import_worker(request: Request) -> ImportWorker:
    worker: ImportWorker = request.app.state.import_worker
    return worker


ImportWorkerDep = Annotated[ImportWorker, Depends(get_import_worker)]

_CSV_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"text/csv": {"schema": {"type": "string"}}},
        "description": "A CSV file with a header row, UTF-8 (a byte order mark is fine), "
        "up to 25 MiB",
    }
}


def job_out(job: JobView) -> ImportJobOut:
    failures = None
    if job.failures is not None:
        failures = [
            ImportFailure(line=f.line, code=f.code, error=f.message, field=f.field, row=f.row)
            for f in job.failures
        ]
    return ImportJobOut(
        id=job.id, kind=job.kind, status=job.status, dry_run=job.dry_run,
        rows_total=job.rows_total, rows_done=job.rows_done, **job.counts.as_dict(),
        failures=failures, error=ImportJobError(**job.error) if job.error else None,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
    )  # fmt: skip


@router.post("/imports", status_code=202, response_model=ImportJobOut, openapi_extra=_CSV_BODY)
async def import_route(
    request: Request,
    response: Response,
    project: TeamProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    worker: ImportWorkerDep,
    kind: Annotated[ImportKind, Query(description="contacts or companies")],
    dry_run: Annotated[bool, Query(description="check and count without writing")] = False,
    column_map: Annotated[
        list[str] | None,
        Query(
            alias="map",
            max_length=100,
            description="COLUMN=FIELD pairs, comma-separated (repeatable): "
            "`User ID=user_id,Plan=metadata.plan`; `COLUMN=` skips the column",
        ),
    ] = None,
    keep_unknown_columns: Annotated[
        bool,
        Query(
            description="keep columns HAL has no field for as metadata, under a key made "
            "from the name (`Phone Number` -> `phone_number`)"
        ),
    ] = False,
) -> ImportJobOut:
    """Queue an import of contacts or companies, as `hal import` does: 202 with the job
    (`Location` follows it). A fault in the encoding or the header refuses the file at once
    (nothing written)."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media not in {"text/csv", "application/csv"}:
        raise UnsupportedMediaType(
            "unsupported_media_type",
            "send the file with 'Content-Type: text/csv'",
            field="content-type",
        )
    options = ImportOptions(parse_mapping(column_map or []), keep_unknown_columns)
    job = await import_jobs.submit_import(
        db, app_id=project.app_id, kind=kind, body=await request.body(), options=options,
        dry_run=dry_run, limits=settings.limits,
    )  # fmt: skip
    worker.wake()
    response.headers["Location"] = f"/api/projects/{project.app_id}/imports/{job.id}"
    return job_out(job)


@router.get("/imports/{import_id}", response_model=ImportJobOut)
async def import_status(import_id: RowId, project: TeamProjectDep, db: DatabaseDep) -> ImportJobOut:
    """Where the import is (`rows_done` of `rows_total`), what its rows did so far, and every
    failed row once it has ended."""
    job = await db.run(
        lambda tx: import_jobs.import_job(tx, app_id=project.app_id, job_id=import_id)
    )
    return job_out(job)

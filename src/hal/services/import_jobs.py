"""Import jobs (README "Batch writes and imports"): an uploaded CSV is checked (its encoding
and header: a fault refuses it at once), stored with its job, and run in chunks by whichever
process holds the job's lease; `hal import` runs its file the same way in its own process.

Every chunk's transaction first renews the lease, holding the job's row, and ends by adding
the chunk's counts and failed rows to the job: a chunk is written and counted once, whatever
happens to the process. Any `hal serve` or `hal worker` process claims a queued job, or one
whose lease ran out (its process died), with SELECT ... FOR UPDATE SKIP LOCKED, as the webhook
delivery claims messages, and goes on after the rows already done. A stopping process finishes
its chunk and lets the lease go, so another takes the job at once. The job's end is a change,
`import.completed` (or `import.failed`), and its file is deleted then.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import logging
import os
import secrets
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, delete, func, insert, or_, select, update

from hal.config import Settings
from hal.db.engine import Database, Tx
from hal.db.models import ImportFailedRow, ImportJob, ImportUpload, Project
from hal.db.types import utcnow
from hal.domain.changes import ChangeType
from hal.domain.csv_import import ImportKind
from hal.domain.errors import HalError, NotFound
from hal.domain.limits import Limits
from hal.services.imports import (
    CHUNK_ROWS,
    ImportCounts,
    RowFailure,
    RowOutcome,
    Stopped,
    import_rows,
    open_text,
    read_import,
)
from hal.services.imports import (
    ImportFile as ReadFile,
)

log = logging.getLogger("hal.imports")

JOBS = cast(Table, ImportJob.__table__)
FILES = cast(Table, ImportUpload.__table__)
FAILURES = cast(Table, ImportFailedRow.__table__)
QUEUED, RUNNING, DONE, FAILED = "queued", "running", "done", "failed"
UPLOAD, COMMAND = "upload", "command"
MAX_CLAIMS = 5  # a job that stopped its process this often is failed, not run again


@dataclass(frozen=True)
class ImportOptions:
    """How the header is read: the caller's column -> field mapping, and whether unknown
    columns are kept as metadata."""

    mapping: Mapping[str, str] = field(default_factory=dict)
    keep_unknown: bool = False

    def stored(self) -> dict[str, Any]:
        return {"map": dict(self.mapping), "keep_unknown_columns": self.keep_unknown}

    @classmethod
    def of(cls, stored: Mapping[str, Any]) -> ImportOptions:
        return cls(dict(stored.get("map") or {}), bool(stored.get("keep_unknown_columns")))


@dataclass(frozen=True)
class JobView:
    """An import job as the API shows it; `failures` once it has ended."""

    id: int
    kind: str
    status: str
    dry_run: bool
    rows_total: int | None
    rows_done: int
    counts: ImportCounts
    error: dict[str, Any] | None
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    failures: list[RowFailure] | None = None


class LeaseLost(Exception):
    """Another process took the job over (this one's lease ran out)."""


def read_upload(kind: ImportKind, body: bytes, limits: Limits, options: ImportOptions) -> ReadFile:
    """The upload read as an import file: its encoding and header checked (a fault refuses
    the whole file, nothing written)."""
    text = open_text(io.BytesIO(body))
    return read_import(kind, text, limits, mapping=options.mapping,
                       keep_unknown=options.keep_unknown)  # fmt: skip


def _count_rows(kind: ImportKind, body: bytes, limits: Limits, options: ImportOptions) -> int:
    return sum(1 for _ in read_upload(kind, body, limits, options).rows)


# --- starting and reading a job --------------------------------------------------------------


async def submit_import(
    db: Database,
    *,
    app_id: str,
    kind: ImportKind,
    body: bytes,
    options: ImportOptions,
    dry_run: bool,
    limits: Limits,
) -> JobView:
    """Check the upload (in a thread: reading 25 MiB takes a moment), then store it as a
    queued job; a process's import worker runs it."""
    total = await asyncio.to_thread(_count_rows, kind, body, limits, options)

    async def work(tx: Tx) -> JobView:
        project = await tx.project(app_id)
        job_id = await _new_job(
            tx, project.id, kind, UPLOAD, QUEUED, dry_run, options, rows_total=total
        )
        await tx.execute(insert(FILES), {"job_id": job_id, "content": body})
        return await _view(tx, project_id=project.id, job_id=job_id)

    return await db.run(work)


async def _new_job(
    tx: Tx,
    project_id: int,
    kind: ImportKind,
    source: str,
    status: str,
    dry_run: bool,
    options: ImportOptions,
    **more: Any,
) -> int:
    """A new job's row (an upload's, queued; or `hal import`'s, running); its id."""
    values = {
        "project_id": project_id, "kind": kind.value, "source": source, "status": status,
        "dry_run": dry_run, "options": options.stored(), "created_at": tx.now, **more,
    }  # fmt: skip
    return int((await tx.execute(insert(JOBS).returning(JOBS.c.id), values)).scalar_one())


async def import_job(tx: Tx, *, app_id: str, job_id: int) -> JobView:
    """GET .../imports/{id}: where the job is; its failed rows once it has ended."""
    project = await tx.project(app_id)
    return await _view(tx, project_id=project.id, job_id=job_id)


async def _view(tx: Tx, *, project_id: int, job_id: int) -> JobView:
    job = (
        await tx.execute(select(JOBS).where(JOBS.c.id == job_id, JOBS.c.project_id == project_id))
    ).first()
    if job is None:
        raise NotFound("unknown_import", f"no import {job_id} in this project", field="import_id")
    failures = None
    if job.status in {DONE, FAILED}:
        rows = await tx.execute(
            select(FAILURES).where(FAILURES.c.job_id == job_id).order_by(FAILURES.c.line)
        )
        failures = [RowFailure(r.line, r.code, r.message, r.field, r.row) for r in rows]
    counts = ImportCounts(job.created, job.updated, job.unchanged, job.failed)
    return JobView(
        id=job.id, kind=job.kind, status=job.status, dry_run=job.dry_run,
        rows_total=job.rows_total, rows_done=job.rows_done, counts=counts, error=job.error,
        created_at=job.created_at, started_at=job.started_at, finished_at=job.finished_at,
        failures=failures,
    )  # fmt: skip


# --- running a job ---------------------------------------------------------------------------


@dataclass
class Claim:
    """A job this process holds the lease of."""

    job_id: int
    project_id: int
    app_id: str
    kind: ImportKind
    source: str
    dry_run: bool
    options: ImportOptions
    rows_done: int
    claims: int
    owner: str


@dataclass
class _Progress:
    """The job's side of each chunk's transaction (imports.Checkpoint): the lease checked
    first (an early way out for a process whose job was taken over), then the chunk's counts
    and failures added, its rows done advanced and the lease renewed, only while this process
    holds the lease and the rows before the chunk are the ones done: a chunk whose process
    lost the job, or that would be counted twice, rolls back."""

    claim: Claim
    lease: timedelta
    header_columns: tuple[str, ...] = ()

    async def before(self, tx: Tx) -> None:
        held = await tx.execute(select(JOBS.c.lease_owner).where(JOBS.c.id == self.claim.job_id))
        if held.scalar_one_or_none() != self.claim.owner:
            raise LeaseLost(f"import {self.claim.job_id} was taken over")

    async def after(self, tx: Tx, outcome: list[RowOutcome]) -> None:
        counts = ImportCounts()
        for done in outcome:
            counts.add(done.verdict)
        kept = await tx.execute(
            update(JOBS)
            .where(
                JOBS.c.id == self.claim.job_id,
                JOBS.c.lease_owner == self.claim.owner,
                JOBS.c.rows_done == self.claim.rows_done,
            )
            .values(
                rows_done=JOBS.c.rows_done + len(outcome),
                created=JOBS.c.created + counts.created,
                updated=JOBS.c.updated + counts.updated,
                unchanged=JOBS.c.unchanged + counts.unchanged,
                failed=JOBS.c.failed + counts.failed,
                lease_until=tx.now + self.lease,
            )
        )
        if kept.rowcount != 1:
            raise LeaseLost(f"import {self.claim.job_id} was taken over")
        failed = [done for done in outcome if done.error is not None]
        if failed:
            await tx.execute(
                insert(FAILURES),
                [{"job_id": self.claim.job_id, "line": done.row.line, "code": done.error.code,
                  "message": done.error.message, "field": done.error.field,
                  "row": dict(zip(self.header_columns, done.row.cells, strict=False))}
                 for done in failed if done.error is not None],
            )  # fmt: skip

        def committed() -> None:
            self.claim.rows_done += len(outcome)

        tx.committed.append(committed)


async def _finish(db: Database, claim: Claim) -> None:
    """The job is done: its counts become the `import.completed` change, its file goes."""

    async def work(tx: Tx) -> None:
        job = (
            await tx.execute(
                update(JOBS)
                .where(JOBS.c.id == claim.job_id, JOBS.c.lease_owner == claim.owner)
                .values(status=DONE, finished_at=tx.now, lease_owner=None, lease_until=None)
                .returning(*JOBS.c)
            )
        ).first()
        if job is None:
            raise LeaseLost(f"import {claim.job_id} was taken over")
        await tx.execute(delete(FILES).where(FILES.c.job_id == claim.job_id))
        if not job.dry_run:
            tx.record(job.project_id, ChangeType.IMPORT_COMPLETED, _ended(job))

    await db.run(work)


def _ended(job: Any) -> dict[str, Any]:
    """An ended job's change: what it was and what its rows did."""
    return {
        "id": job.id, "kind": job.kind, "status": job.status, "source": job.source,
        "rows": job.rows_done, "created": job.created, "updated": job.updated,
        "unchanged": job.unchanged, "failed": job.failed, "error": job.error,
    }  # fmt: skip


async def fail_job(db: Database, job_id: int, error: HalError) -> None:
    """The job cannot go on: it ends failed with the reason (`import.failed`); the rows it
    wrote stay."""

    async def work(tx: Tx) -> None:
        job = (
            await tx.execute(
                update(JOBS)
                .where(JOBS.c.id == job_id, JOBS.c.status.in_((QUEUED, RUNNING)))
                .values(
                    status=FAILED,
                    error=error.body()["error"],
                    finished_at=tx.now,
                    lease_owner=None,
                    lease_until=None,
                )
                .returning(*JOBS.c)
            )
        ).first()
        await tx.execute(delete(FILES).where(FILES.c.job_id == job_id))
        if job is not None and not job.dry_run:
            tx.record(job.project_id, ChangeType.IMPORT_FAILED, _ended(job))

    await db.run(work)


async def _release(db: Database, claim: Claim) -> None:
    """Let the lease go now (this process is stopping): another takes the job at once."""

    async def work(tx: Tx) -> None:
        await tx.execute(
            update(JOBS)
            .where(JOBS.c.id == claim.job_id, JOBS.c.lease_owner == claim.owner)
            .values(lease_owner=None, lease_until=None)
        )

    await db.run(work)


async def claim_job(db: Database, *, owner: str, lease: timedelta) -> Claim | None:
    """Take the oldest queued job, or one whose lease ran out, for `lease`."""

    async def work(tx: Tx) -> Claim | None:
        job = (
            await tx.execute(
                select(JOBS, Project.app_id)
                .join(Project, Project.id == JOBS.c.project_id)
                .where(
                    JOBS.c.status.in_((QUEUED, RUNNING)),
                    or_(JOBS.c.lease_until.is_(None), JOBS.c.lease_until < tx.now),
                )
                .order_by(JOBS.c.id)
                .limit(1)
                .with_for_update(skip_locked=True, of=JOBS)
            )
        ).first()
        if job is None:
            return None
        await tx.execute(
            update(JOBS)
            .where(JOBS.c.id == job.id)
            .values(
                status=RUNNING,
                lease_owner=owner,
                lease_until=tx.now + lease,
                claims=JOBS.c.claims + 1,
                started_at=func.coalesce(JOBS.c.started_at, tx.now),
            )
        )
        return Claim(
            job_id=job.id, project_id=job.project_id, app_id=job.app_id,
            kind=ImportKind(job.kind), source=job.source, dry_run=job.dry_run,
            options=ImportOptions.of(job.options), rows_done=job.rows_done,
            claims=job.claims + 1, owner=owner,
        )  # fmt: skip

    return await db.run(work)


async def run_claimed(
    db: Database,
    claim: Claim,
    *,
    limits: Limits,
    lease: timedelta,
    chunk_rows: int = CHUNK_ROWS,
    stopping: Callable[[], bool] | None = None,
) -> None:
    """Run a claimed upload from the rows it has done to its end (or until `stopping`)."""
    if claim.source != UPLOAD:
        reason = "the `hal import` command that ran this import stopped before its end; run it "
        await fail_job(db, claim.job_id, HalError("import_abandoned", reason + "again "
                       "(rows already imported come out unchanged)"))  # fmt: skip
        return
    if claim.claims > MAX_CLAIMS:
        message = f"the import stopped its process {MAX_CLAIMS} times; it is not run again"
        await fail_job(db, claim.job_id, HalError("import_abandoned", message))
        return
    content = await db.run(lambda tx: _content(tx, claim.job_id))
    if content is None:
        await fail_job(db, claim.job_id, HalError("import_abandoned", "the file is gone"))
        return
    file = read_upload(claim.kind, content, limits, claim.options)
    rows = itertools.islice(file.rows, claim.rows_done, None)
    progress = _Progress(claim, lease, header_columns=file.header.columns)
    try:
        await import_rows(
            db=db, app_id=claim.app_id, file=ReadFile(file.kind, file.header, rows),
            limits=limits, dry_run=claim.dry_run, chunk_rows=chunk_rows, checkpoint=progress,
            stopping=stopping,
        )  # fmt: skip
    except Stopped:
        await _release(db, claim)
        return
    except LeaseLost:
        log.warning("import %s: another process took it over", claim.job_id)
        return
    except NotFound as exc:  # the project was deleted meanwhile
        await fail_job(db, claim.job_id, exc)
        return
    await _finish(db, claim)


async def _content(tx: Tx, job_id: int) -> bytes | None:
    found = await tx.execute(select(FILES.c.content).where(FILES.c.job_id == job_id))
    content = found.scalar_one_or_none()
    return bytes(content) if content is not None else None


# --- `hal import` ----------------------------------------------------------------------------


async def import_file(
    db: Database,
    *,
    app_id: str,
    file: ReadFile,
    dry_run: bool,
    limits: Limits,
    options: ImportOptions,
    lease: timedelta,
    chunk_rows: int = CHUNK_ROWS,
    on_failure: Callable[[RowFailure], None] | None = None,
    on_chunk: Callable[[], None] | None = None,
) -> ImportCounts:
    """`hal import`: the file (read here, as a stream) run as a job of this process, so it
    is seen like an upload's and its end is a change; its counts."""
    owner = _owner()

    async def start(tx: Tx) -> Claim:
        project = await tx.project(app_id)
        job_id = await _new_job(
            tx, project.id, file.kind, COMMAND, RUNNING, dry_run, options,
            lease_owner=owner, lease_until=tx.now + lease, claims=1, started_at=tx.now,
        )  # fmt: skip
        return Claim(job_id, project.id, app_id, file.kind, COMMAND, dry_run, options, 0, 1,
                     owner)  # fmt: skip

    claim = await db.run(start)
    progress = _Progress(claim, lease, header_columns=file.header.columns)
    try:
        counts = await import_rows(
            db=db, app_id=app_id, file=file, limits=limits, dry_run=dry_run,
            chunk_rows=chunk_rows, checkpoint=progress, on_failure=on_failure,
            on_chunk=on_chunk,
        )  # fmt: skip
    except HalError as exc:
        await fail_job(db, claim.job_id, exc)
        raise
    await _finish(db, claim)
    return counts


# --- the worker ------------------------------------------------------------------------------


async def importing_projects(db: Database) -> frozenset[int]:
    """The projects an import job runs for now, in any process (its lease has not ended)."""

    async def work(tx: Tx) -> frozenset[int]:
        running = (
            select(JOBS.c.project_id)
            .where(JOBS.c.status == RUNNING, JOBS.c.lease_until > tx.now)
            .distinct()
        )
        return frozenset((await tx.execute(running)).scalars())

    return await db.run(work)


def _owner() -> str:
    """Who holds a lease: this process, recognisably in the database."""
    return f"{socket.gethostname()[:30]}:{os.getpid()}:{secrets.token_hex(4)}"


async def purge_ended(db: Database, *, before: datetime, batch: int = 500) -> int:
    """Delete jobs that ended before `before` (their failed rows with them)."""

    async def work(tx: Tx) -> int:
        ended = select(JOBS.c.id).where(JOBS.c.finished_at < before).limit(batch)
        ids = list((await tx.execute(ended)).scalars())
        if ids:
            await tx.execute(delete(FAILURES).where(FAILURES.c.job_id.in_(ids)))
            await tx.execute(delete(JOBS).where(JOBS.c.id.in_(ids)))
        return len(ids)

    return await db.run(work)


@dataclass(frozen=True)
class WorkerOptions:
    limits: Limits
    lease: timedelta
    poll_seconds: float
    chunk_rows: int
    retention: timedelta


class ImportWorker:
    """Runs import jobs in this process, one at a time: the oldest queued or abandoned one,
    at once when this process queued it (`wake`), else on the next poll."""

    @classmethod
    def of(cls, db: Database, settings: Settings) -> ImportWorker:
        """A worker with the settings' options (HAL_IMPORT_*)."""
        options = WorkerOptions(
            limits=settings.limits,
            lease=timedelta(seconds=settings.import_lease_seconds),
            poll_seconds=settings.import_poll_seconds,
            chunk_rows=settings.import_chunk_rows,
            retention=settings.import_retention,
        )
        return cls(db, options, enabled=settings.import_worker)

    def __init__(self, db: Database, options: WorkerOptions, *, enabled: bool = True) -> None:
        self.db, self.options, self.enabled = db, options, enabled
        self.owner = _owner()
        self.stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._drain: asyncio.Task[None] | None = None
        self._importing: int | None = None  # the project of the job in hand

    def importing(self) -> int | None:
        """The project this worker imports for now (its webhooks wait, webhooks/delivery.py)."""
        return self._importing

    def start(self) -> ImportWorker:
        if self.enabled:
            self._task = asyncio.create_task(self.run(), name="import-jobs")
        return self

    def wake(self) -> None:
        """A job was queued here: run it now (without a running loop, in a task that ends
        when no job is left)."""
        if not self.enabled:
            return
        self._wake.set()  # a drain whose last look found nothing looks again
        if self._task is None and (self._drain is None or self._drain.done()):
            self._drain = asyncio.create_task(self._run_all(), name="import-jobs-now")

    async def run(self) -> None:
        while not self.stopping.is_set():
            self._wake.clear()
            try:
                busy = await self.step()
            except Exception:
                log.exception("import jobs: a step failed; trying again")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.options.poll_seconds)

    async def _run_all(self) -> None:
        while not self.stopping.is_set():
            self._wake.clear()
            try:
                busy = await self.step()
            except Exception:
                log.exception("import jobs: a step failed")
                return
            if not busy and not self._wake.is_set():
                return

    async def step(self) -> bool:
        """Run one job to its end; False when there was none."""
        claim = await claim_job(self.db, owner=self.owner, lease=self.options.lease)
        if claim is None:
            await purge_ended(self.db, before=utcnow() - self.options.retention)
            return False
        self._importing = claim.project_id
        try:
            await run_claimed(
                self.db, claim, limits=self.options.limits, lease=self.options.lease,
                chunk_rows=self.options.chunk_rows, stopping=self.stopping.is_set,
            )  # fmt: skip
        except Exception:
            # The lease runs out and a process takes the job again (MAX_CLAIMS times).
            log.exception("import %s failed; it is taken again when its lease ends",
                          claim.job_id)  # fmt: skip
        finally:
            self._importing = None
        return True

    async def stop(self) -> None:
        """Finish the chunk in hand, let its job's lease go, and stop."""
        self.stopping.set()
        self._wake.set()
        for task in (self._task, self._drain):
            if task is not None:
                await task

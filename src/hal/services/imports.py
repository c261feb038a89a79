"""CSV imports of contacts and companies (README "Batch writes and imports"): a file read as a
stream of rows and written in chunks, each chunk one transaction. `hal import` runs them here
in its own process; an upload over HTTP runs them as a job (services/import_jobs.py).

Each row goes through the team's identify (contacts) or company write, so matching, limits
and the change log are the widget's own. A row is counted by the changes it recorded:
`contact.created` / `company.created` is created, any other change is updated, none is
unchanged. Before its rows, a chunk reads once what they name, and the store holds their writes
to make them at the end of the chunk, one set-based statement per table (db/store/lookahead.py).
Each row runs in a savepoint: a row that fails leaves nothing behind and the chunk goes on. A
dry run writes each chunk and rolls it back.
"""

from __future__ import annotations

import asyncio
import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import IO, Protocol

from pydantic import ValidationError
from sqlalchemy import text

from hal.db.engine import Database, Tx
from hal.db.store.lookahead import NeedsDatabase, flush, look_ahead
from hal.domain.attributes import Model, read_cells
from hal.domain.changes import ChangeType
from hal.domain.csv_import import (
    Header,
    ImportKind,
    check_utf8,
    column_of,
    company_fields,
    contact_fields,
    named_keys,
    read_header,
    row_cells,
    row_values,
)
from hal.domain.errors import HalError, InvalidInput
from hal.domain.limits import Limits
from hal.domain.projects import ProjectConfig
from hal.domain.validation import parse_email
from hal.schemas import CompanyInput, IdentifyFields
from hal.services.identify import identify_contact, write_company

CHUNK_ROWS = 1000
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RowFailure:
    line: int  # where the row starts in the file (the header is line 1)
    code: str
    message: str
    field: str | None  # the file's name for the column at fault
    row: dict[str, str]  # the row's cells by the file's column names


@dataclass
class ImportCounts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
        }

    def add(self, verdict: str) -> None:
        setattr(self, verdict, getattr(self, verdict) + 1)


@dataclass(frozen=True)
class Row:
    line: int
    cells: list[str]
    values: dict[str, str] = field(default_factory=dict)  # by the field each cell fills
    error: HalError | None = None  # could not be read


@dataclass(frozen=True)
class RowOutcome:
    verdict: str  # created, updated, unchanged or failed
    row: Row
    error: HalError | None = None

    def failure(self, header: Header) -> RowFailure:
        assert self.error is not None
        cells = row_cells(header, self.row.cells)
        return RowFailure(self.row.line, self.error.code, self.error.message, self.error.field,
                          cells)  # fmt: skip


# --- reading ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportFile:
    kind: ImportKind
    header: Header
    rows: Iterator[Row]


def read_import(
    kind: ImportKind,
    text: IO[str],
    limits: Limits,
    *,
    mapping: Mapping[str, str] | None = None,
    keep_unknown: bool = False,
) -> ImportFile:
    """The header (checked now: a fault refuses the file) and the rows after it, read lazily."""
    reader = csv.reader(text, strict=True)
    try:
        names = next(reader, None)
    except csv.Error as exc:
        message = f"the header row cannot be read: {exc}"
        raise InvalidInput("invalid_csv", message, field="header") from None
    header = read_header(
        kind, names, max_key_length=limits.max_metadata_key_length, mapping=mapping,
        keep_unknown=keep_unknown,
    )  # fmt: skip

    def rows() -> Iterator[Row]:
        line = reader.line_num + 1
        while True:
            try:
                cells = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                error = InvalidInput("invalid_csv", f"the row cannot be read: {exc}", field="row")
                yield Row(line, [], error=error)
                line = reader.line_num + 1
                continue
            start, line = line, reader.line_num + 1
            if not cells:
                continue  # a blank line
            try:
                yield Row(start, cells, row_values(header, cells))
            except HalError as exc:
                yield Row(start, cells, error=exc)

    return ImportFile(kind, header, rows())


def chunks(rows: Iterator[Row], size: int) -> Iterator[list[Row]]:
    chunk: list[Row] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def open_text(binary: IO[bytes]) -> IO[str]:
    """Check that the file is UTF-8 (one pass, a block at a time), then read it as text from
    the start; a byte order mark is dropped."""
    check_utf8(iter(lambda: binary.read(_BLOCK), b""))
    binary.seek(0)
    return io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")


# --- writing a chunk -------------------------------------------------------------------------


def _invalid(header: Header, exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    column = header.column_of(column_of(header.kind, tuple(first.get("loc", ()))))
    return InvalidInput("invalid_field", f"{column}: {first.get('msg')}", field=column)


def _column_error(header: Header, exc: HalError) -> HalError:
    """A write's error names the file's column, not the write's field path."""
    exc.field = header.column_of(column_of(header.kind, exc.field))
    return exc


async def _write_row(
    tx: Tx, *, project: ProjectConfig, header: Header, row: Row, limits: Limits
) -> None:
    contacts = header.kind is ImportKind.CONTACTS
    known = project.attributes_of(Model.CONTACT if contacts else Model.COMPANY)
    try:
        if contacts:
            fields = contact_fields(row.values)
            fields["metadata"] = read_cells(fields.get("metadata"), known)
            request = IdentifyFields.model_validate(fields)
            await identify_contact(tx, app_id=project.app_id, request=request, limits=limits)
        else:
            fields = company_fields(row.values)
            fields["metadata"] = read_cells(fields.get("metadata"), known)
            company = CompanyInput.model_validate(fields)
            await write_company(tx, app_id=project.app_id, company=company, limits=limits)
    except ValidationError as exc:
        raise _invalid(header, exc) from None
    except HalError as exc:
        raise _column_error(header, exc) from None


def _verdict(kind: ImportKind, types: list[ChangeType]) -> str:
    contacts = kind is ImportKind.CONTACTS
    created = ChangeType.CONTACT_CREATED if contacts else ChangeType.COMPANY_CREATED
    if created in types:
        return "created"
    return "updated" if types else "unchanged"


async def _look_ahead(
    tx: Tx, *, project: ProjectConfig, header: Header, rows: list[Row], limits: Limits
) -> None:
    """Read once what the rows name (db/store/lookahead.py)."""
    user_ids: set[str] = set()
    emails: set[str] = set()
    company_ids: set[str] = set()
    for row in rows:
        if row.error is not None:
            continue
        user_id, email, company_id = named_keys(header.kind, row.values)
        if user_id is not None:
            user_ids.add(user_id)
        if email is not None:
            with contextlib.suppress(InvalidInput):  # the row will say what is wrong
                emails.add(parse_email(email, limits=limits).normalized)
        if company_id is not None:
            company_ids.add(company_id)
    await look_ahead(
        tx, project_id=project.id, user_ids=user_ids, emails=emails, company_ids=company_ids,
        rows=len(rows),
    )  # fmt: skip


async def _write_one(
    tx: Tx, *, project: ProjectConfig, header: Header, row: Row, limits: Limits, rest: list[Row]
) -> RowOutcome:
    """One row in a savepoint held in memory; on the database (after the writes held so far)
    when it needs what the look-ahead does not hold."""
    recorded = len(tx.changes)
    await tx.savepoint(in_database=tx.lookahead is None)
    try:
        await _write_row(tx, project=project, header=header, row=row, limits=limits)
    except NeedsDatabase:
        await tx.rollback_to_savepoint()
        await flush(tx)
        outcome = await _write_one(tx, project=project, header=header, row=row, limits=limits,
                                   rest=rest)  # fmt: skip
        await _look_ahead(tx, project=project, header=header, rows=rest, limits=limits)
        return outcome
    except HalError as exc:
        await tx.rollback_to_savepoint()
        return RowOutcome("failed", row, exc)
    await tx.release_savepoint()
    return RowOutcome(_verdict(header.kind, [c.type for c in tx.changes[recorded:]]), row)


async def write_chunk(
    tx: Tx, *, app_id: str, header: Header, rows: list[Row], limits: Limits
) -> list[RowOutcome]:
    """Every row of the chunk, in the caller's transaction; what each did."""
    project = await tx.project(app_id)
    await _look_ahead(tx, project=project, header=header, rows=rows, limits=limits)
    outcome: list[RowOutcome] = []
    for index, row in enumerate(rows):
        if row.error is not None:
            outcome.append(RowOutcome("failed", row, row.error))
            continue
        outcome.append(
            await _write_one(tx, project=project, header=header, row=row, limits=limits,
                             rest=rows[index + 1 :])
        )  # fmt: skip
    await flush(tx)
    return outcome


# --- a file's chunks -------------------------------------------------------------------------


class Checkpoint(Protocol):
    """What a chunk's transaction does around its rows: an import job checks it still holds
    its lease first and keeps its progress after (services/import_jobs.py)."""

    async def before(self, tx: Tx) -> None: ...

    async def after(self, tx: Tx, outcome: list[RowOutcome]) -> None: ...


class Stopped(Exception):
    """An import left between two chunks (its process is stopping)."""


class _DryRun(Exception):
    """Rolls a dry run's chunk back, carrying what it would have done."""

    def __init__(self, outcome: list[RowOutcome]) -> None:
        super().__init__("dry run")
        self.outcome = outcome


async def _chunk_work(
    tx: Tx,
    *,
    app_id: str,
    header: Header,
    rows: list[Row],
    limits: Limits,
    dry_run: bool,
    checkpoint: Checkpoint | None,
) -> list[RowOutcome]:
    if checkpoint is not None:
        await checkpoint.before(tx)
    outcome = await write_chunk(tx, app_id=app_id, header=header, rows=rows, limits=limits)
    if dry_run:
        raise _DryRun(outcome)
    if checkpoint is not None:
        await checkpoint.after(tx, outcome)
    return outcome


async def import_chunk(
    db: Database,
    *,
    app_id: str,
    header: Header,
    rows: list[Row],
    limits: Limits,
    dry_run: bool = False,
    checkpoint: Checkpoint | None = None,
) -> list[RowOutcome]:
    """One chunk, one transaction (run again after a lost race), with the checkpoint in it; a
    dry run's is rolled back and its checkpoint made after, in a transaction of its own."""
    work = partial(_chunk_work, app_id=app_id, header=header, rows=rows, limits=limits,
                   dry_run=dry_run, checkpoint=checkpoint)  # fmt: skip
    try:
        return await db.run(work)
    except _DryRun as rolled_back:
        outcome = rolled_back.outcome
    if checkpoint is not None:
        await db.run(lambda tx: checkpoint.after(tx, outcome))
    return outcome


async def import_rows(
    *,
    db: Database,
    app_id: str,
    file: ImportFile,
    limits: Limits,
    dry_run: bool = False,
    on_failure: Callable[[RowFailure], None] | None = None,
    on_chunk: Callable[[], None] | None = None,
    chunk_rows: int = CHUNK_ROWS,
    checkpoint: Checkpoint | None = None,
    stopping: Callable[[], bool] | None = None,
) -> ImportCounts:
    """Import the file's rows in chunks, one after the other; failed rows go to
    `on_failure` as they happen. `stopping` is asked before each chunk: when it says so,
    `Stopped` is raised."""
    await db.run(lambda tx: tx.project(app_id))
    counts = ImportCounts()
    for number, chunk in enumerate(chunks(file.rows, chunk_rows), start=1):
        if stopping is not None and stopping():
            raise Stopped
        outcome = await import_chunk(
            db, app_id=app_id, header=file.header, rows=chunk, limits=limits, dry_run=dry_run,
            checkpoint=checkpoint,
        )  # fmt: skip
        grew = any(done.verdict == "created" for done in outcome)
        if db.is_postgres and not dry_run and grew and number in _ANALYZED:
            await _analyze(db)
        for done in outcome:
            counts.add(done.verdict)
            if done.error is not None and on_failure is not None:
                on_failure(done.failure(file.header))
        if on_chunk is not None:
            on_chunk()
        # SQLite runs on the event loop's thread: let the process's other work (requests,
        # the delivery loop) take the database between two chunks.
        await asyncio.sleep(0)
    return counts


# The tables an import grows. PostgreSQL keeps a statement's plan made while they were small
# (a scan) until their statistics change; autovacuum refreshes them in time for steady
# traffic, but an import grows them faster (or runs where autovacuum is off), and the
# person lookup then scanned every contact: 160 rows/s and falling at 50,000 rows.
_GROWN = text("ANALYZE contacts, companies, contact_companies")


_ANALYZED = frozenset({1, 2, 4, 8, 16})  # then the plans hold: the tables' shape is known


async def _analyze(db: Database) -> None:
    """Refresh the grown tables' statistics (after chunks 1, 2, 4, 8 and 16, when they made
    rows: a re-run that creates nothing leaves them as they were)."""
    async with db.engine.connect() as connection:
        await connection.execute(_GROWN)
        await connection.commit()


def failures_writer(out: IO[str], columns: Iterable[str]) -> Callable[[RowFailure], None]:
    """`--errors FILE`: every failed row with its line number and an `error` column."""
    names = ["line", *columns, "error"]
    writer = csv.DictWriter(out, fieldnames=names, extrasaction="ignore")
    writer.writeheader()

    def write(failure: RowFailure) -> None:
        error = f"{failure.code}: {failure.message}"
        writer.writerow({**failure.row, "line": failure.line, "error": error})

    return write

"""`hal import contacts|companies` and POST /api/projects/{app_id}/imports: a CSV file read
as a stream and written in chunks of rows, each chunk one transaction (README "Batch writes
and imports").

Each row goes through the team's identify (contacts) or company write, so matching, limits
and the change log are the widget's own. A row is counted by the changes it recorded:
`contact.created` / `company.created` is created, any other change is updated, none is
unchanged. Each row runs in a savepoint: a row that fails leaves nothing behind and the chunk
goes on (a chunk is first written without savepoints, and again with them only when one of
its rows failed). Before its rows, a chunk reads once what they name: which of their people
exist and their companies (db/store/lookahead.py). A dry run writes each chunk and rolls it
back.
"""

from __future__ import annotations

import contextlib
import csv
import io
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import IO

from pydantic import ValidationError
from sqlalchemy import text

from hal.db.engine import Database, Tx
from hal.db.store.lookahead import look_ahead, write_links
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
    row_values,
)
from hal.domain.errors import HalError, InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.validation import parse_email
from hal.schemas import CompanyInput, IdentifyFields
from hal.services.identify import identify_contact, write_company

CHUNK_ROWS = 500
_BLOCK = 1 << 20


@dataclass(frozen=True)
class RowFailure:
    line: int  # where the row starts in the file (the header is line 1)
    code: str
    message: str
    field: str | None
    row: dict[str, str]


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


@dataclass(frozen=True)
class _Row:
    line: int
    values: dict[str, str] = field(default_factory=dict)
    error: HalError | None = None  # could not be read


class _DryRun(Exception):
    """Rolls a dry run's chunk back, carrying what it would have done."""

    def __init__(self, outcome: list[tuple[str, _Row, HalError | None]]) -> None:
        super().__init__("dry run")
        self.outcome = outcome


def _invalid(kind: ImportKind, exc: ValidationError) -> InvalidInput:
    first = exc.errors()[0]
    column = column_of(kind, tuple(first.get("loc", ())))
    return InvalidInput("invalid_field", f"{column}: {first.get('msg')}", field=column)


def _column_error(kind: ImportKind, exc: HalError) -> HalError:
    """A write's error names the CSV column, not the write's field path."""
    exc.field = column_of(kind, exc.field)
    return exc


async def _write_row(tx: Tx, *, app_id: str, kind: ImportKind, row: _Row, limits: Limits) -> None:
    project = await tx.projects.get(tx.connection, app_id)
    model = Model.CONTACT if kind is ImportKind.CONTACTS else Model.COMPANY
    known = project.attributes_of(model) if project is not None else {}
    try:
        if kind is ImportKind.CONTACTS:
            fields = contact_fields(row.values)
            fields["metadata"] = read_cells(fields.get("metadata"), known)
            request = IdentifyFields.model_validate(fields)
            await identify_contact(tx, app_id=app_id, request=request, limits=limits)
        else:
            fields = company_fields(row.values)
            fields["metadata"] = read_cells(fields.get("metadata"), known)
            company = CompanyInput.model_validate(fields)
            await write_company(tx, app_id=app_id, company=company, limits=limits)
    except ValidationError as exc:
        raise _invalid(kind, exc) from None
    except HalError as exc:
        raise _column_error(kind, exc) from None


def _verdict(kind: ImportKind, types: list[ChangeType]) -> str:
    contacts = kind is ImportKind.CONTACTS
    created = ChangeType.CONTACT_CREATED if contacts else ChangeType.COMPANY_CREATED
    if created in types:
        return "created"
    return "updated" if types else "unchanged"


class _Redo(Exception):
    """A row failed in a chunk written without savepoints: roll the chunk back, write it again
    with one savepoint per row."""


async def _write_chunk(
    tx: Tx,
    *,
    app_id: str,
    kind: ImportKind,
    rows: list[_Row],
    limits: Limits,
    dry_run: bool,
    savepoints: bool,
) -> list[tuple[str, _Row, HalError | None]]:
    """Every row of the chunk. Without savepoints a failing row sends the chunk back
    (`_Redo`); with them it is rolled back alone and the chunk goes on."""
    outcome: list[tuple[str, _Row, HalError | None]] = []
    await _look_ahead(tx, app_id=app_id, kind=kind, rows=rows, limits=limits)
    for row in rows:
        if row.error is not None:
            outcome.append(("failed", row, row.error))
            continue
        recorded = len(tx.changes)
        if savepoints:
            await tx.savepoint()
        try:
            await _write_row(tx, app_id=app_id, kind=kind, row=row, limits=limits)
        except HalError as exc:
            if not savepoints:
                raise _Redo from exc
            await tx.rollback_to_savepoint()
            outcome.append(("failed", row, exc))
            continue
        if savepoints:
            await tx.release_savepoint()
        types = [change.type for change in tx.changes[recorded:]]
        outcome.append((_verdict(kind, types), row, None))
    await write_links(tx)
    if dry_run:
        raise _DryRun(outcome)
    return outcome


async def _look_ahead(
    tx: Tx, *, app_id: str, kind: ImportKind, rows: list[_Row], limits: Limits
) -> None:
    """Read once what the chunk's rows name: which of their people exist, and their companies
    (db/store/lookahead.py)."""
    project = await tx.projects.get(tx.connection, app_id)
    user_ids: set[str] = set()
    emails: set[str] = set()
    company_ids: set[str] = set()
    for row in rows:
        if row.error is not None:
            continue
        user_id, email, company_id = named_keys(kind, row.values)
        if user_id is not None:
            user_ids.add(user_id)
        if email is not None:
            with contextlib.suppress(InvalidInput):  # the row will say what is wrong
                emails.add(parse_email(email, limits=limits).normalized)
        if company_id is not None:
            company_ids.add(company_id)
    if project is None:
        return  # the rows will say so
    await look_ahead(
        tx, project_id=project.id, user_ids=user_ids, emails=emails, company_ids=company_ids
    )


async def _import_chunk(
    db: Database, *, app_id: str, kind: ImportKind, rows: list[_Row], limits: Limits, dry_run: bool
) -> list[tuple[str, _Row, HalError | None]]:
    """One transaction for the chunk: first without savepoints (two statements a row saved),
    again with them if a row failed."""
    for savepoints in (False, True):
        work = partial(
            _write_chunk,
            app_id=app_id,
            kind=kind,
            rows=rows,
            limits=limits,
            dry_run=dry_run,
            savepoints=savepoints,
        )
        try:
            return await db.run(work)
        except _DryRun as rolled_back:
            return rolled_back.outcome
        except _Redo:
            continue
    raise AssertionError("unreachable: a chunk with savepoints never asks for a redo")


@dataclass(frozen=True)
class ImportFile:
    kind: ImportKind
    header: Header
    rows: Iterator[_Row]


def read_import(kind: ImportKind, text: IO[str], limits: Limits) -> ImportFile:
    """The header (checked now: a fault refuses the file) and the rows after it, read lazily."""
    reader = csv.reader(text, strict=True)
    try:
        names = next(reader, None)
    except csv.Error as exc:
        message = f"the header row cannot be read: {exc}"
        raise InvalidInput("invalid_csv", message, field="header") from None
    header = read_header(kind, names, max_key_length=limits.max_metadata_key_length)

    def rows() -> Iterator[_Row]:
        line = reader.line_num + 1
        while True:
            try:
                fields = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                error = InvalidInput("invalid_csv", f"the row cannot be read: {exc}", field="row")
                yield _Row(line, error=error)
                line = reader.line_num + 1
                continue
            start, line = line, reader.line_num + 1
            if not fields:
                continue  # a blank line
            try:
                yield _Row(start, row_values(header, fields))
            except HalError as exc:
                yield _Row(start, dict(zip(header.columns, fields, strict=False)), exc)

    return ImportFile(kind, header, rows())


def _chunks(rows: Iterator[_Row], size: int) -> Iterator[list[_Row]]:
    chunk: list[_Row] = []
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
) -> ImportCounts:
    """Import the file's rows in chunks; failed rows go to `on_failure` as they happen."""

    async def project_exists(tx: Tx) -> None:
        if await tx.projects.get(tx.connection, app_id) is None:
            raise NotFound("unknown_app", f"no project with app_id {app_id!r}", field="app_id")

    await db.run(project_exists)
    kind, counts = file.kind, ImportCounts()
    for number, chunk in enumerate(_chunks(file.rows, chunk_rows), start=1):
        outcome = await _import_chunk(
            db, app_id=app_id, kind=kind, rows=chunk, limits=limits, dry_run=dry_run
        )
        if db.is_postgres and not dry_run and number & (number - 1) == 0:
            await _analyze(db)
        for verdict, row, error in outcome:
            setattr(counts, verdict, getattr(counts, verdict) + 1)
            if error is not None and on_failure is not None:
                on_failure(RowFailure(row.line, error.code, error.message, error.field, row.values))
        if on_chunk is not None:
            on_chunk()
    return counts


# The tables an import grows. PostgreSQL keeps a statement's plan made while they were small
# (a scan) until their statistics change; autovacuum refreshes them in time for steady
# traffic, but an import grows them faster (or runs where autovacuum is off), and the
# person lookup then scanned every contact: 160 rows/s and falling at 50,000 rows.
_GROWN = text("ANALYZE contacts, companies, contact_companies")


async def _analyze(db: Database) -> None:
    """Refresh the grown tables' statistics (after chunks 1, 2, 4, 8, ...: a few times)."""
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

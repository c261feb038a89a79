"""The rules of a CSV import, without I/O (README "Batch writes and imports"): how a row
becomes a contact or company write, and what makes a file or a row unreadable (which field
each column fills is domain/csv_header.py's).

A structural fault (not UTF-8, no header, an unknown, repeated or ambiguous column, no key
column) refuses the whole file before anything is written; a fault in one row (a wrong number
of fields, a value that breaks a limit) fails that row only. An empty cell means "not given":
it changes nothing.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable, Mapping
from typing import Any

from hal.domain.csv_header import METADATA_PREFIX, Header, ImportKind, read_header
from hal.domain.errors import InvalidInput

__all__ = ["Header", "ImportKind", "read_header"]  # the header's rules, with the rows'


def row_values(header: Header, fields: list[str]) -> dict[str, str]:
    """The row's cells by the field they fill (a skipped column's are left out); a row with
    a different number of fields than the header is refused (a lost quote or a stray
    separator would otherwise shift values into the wrong columns)."""
    if len(fields) != len(header.columns):
        raise InvalidInput(
            "wrong_field_count",
            f"the row has {len(fields)} fields, the header {len(header.columns)}",
            field="row",
        )
    values: dict[str, str] = {}
    for column, field, value in zip(header.columns, header.fields, fields, strict=True):
        if "\x00" in value:
            raise InvalidInput("invalid_string", f"{column} contains a NUL character", field=column)
        if field is not None:
            values[field] = value
    return values


def row_cells(header: Header, fields: list[str]) -> dict[str, str]:
    """The row's cells by the file's own column names (what a failed row is shown as)."""
    return dict(zip(header.columns, fields, strict=False))


def _given(values: Mapping[str, str], column: str) -> str | None:
    value = values.get(column)
    return value if value else None


def _metadata(values: Mapping[str, str]) -> dict[str, Any] | None:
    metadata = {
        column[len(METADATA_PREFIX) :]: value
        for column, value in values.items()
        if column.startswith(METADATA_PREFIX) and value
    }
    return metadata or None


def contact_fields(values: Mapping[str, str]) -> dict[str, Any]:
    """A contacts row as identify's fields (user_id, email, name, company, metadata)."""
    user_id, email = _given(values, "user_id"), _given(values, "email")
    if user_id is None and email is None:
        raise InvalidInput(
            "missing_identity", "the row has neither a user_id nor an email", field="user_id"
        )
    company_id = _given(values, "company_id")
    for column in ("company_name", "stage"):
        if company_id is None and _given(values, column) is not None:
            raise InvalidInput(
                "missing_company_id", f"{column} is given without a company_id", field=column
            )
    fields: dict[str, Any] = {"user_id": user_id, "email": email, "name": _given(values, "name")}
    if company_id is not None:
        fields["company"] = {
            "id": company_id,
            "name": _given(values, "company_name"),
            "stage": _given(values, "stage"),
        }
    fields["metadata"] = _metadata(values)
    return {key: value for key, value in fields.items() if value is not None}


def company_fields(values: Mapping[str, str]) -> dict[str, Any]:
    """A companies row as a company write (id, name, stage, metadata)."""
    if _given(values, "id") is None:
        raise InvalidInput("missing_company_id", "the row has no company id", field="id")
    fields = {
        "id": values["id"],
        "name": _given(values, "name"),
        "stage": _given(values, "stage"),
        "metadata": _metadata(values),
    }
    return {key: value for key, value in fields.items() if value is not None}


def named_keys(kind: ImportKind, values: Mapping[str, str]) -> tuple[str | None, ...]:
    """The user_id, email (as written) and company id a row names."""
    if kind is ImportKind.CONTACTS:
        return _given(values, "user_id"), _given(values, "email"), _given(values, "company_id")
    return None, None, _given(values, "id")


# A field path of the write -> the column it came from (for a row's error).
_CONTACT_PATHS = {("company", "id"): "company_id", ("company", "name"): "company_name",
                  ("company", "stage"): "stage"}  # fmt: skip


def column_of(kind: ImportKind, path: tuple[Any, ...] | str | None) -> str | None:
    """The column a write's field path came from: `company.name` -> `company_name`,
    `metadata.plan` -> `metadata.plan`."""
    if path is None:
        return None
    parts = tuple(path.split(".")) if isinstance(path, str) else tuple(str(p) for p in path)
    if kind is ImportKind.CONTACTS and parts[:2] in _CONTACT_PATHS:
        return _CONTACT_PATHS[parts[:2]]  # type: ignore[index]
    if kind is ImportKind.COMPANIES and parts[0] == "company" and len(parts) > 1:
        parts = parts[1:]  # the company write's own fields are the file's columns
    if parts and parts[0] == "metadata" and len(parts) > 1:
        return f"{METADATA_PREFIX}{parts[1]}"
    return ".".join(parts) or None


def check_utf8(blocks: Iterable[bytes]) -> None:
    """Refuse a file that is not UTF-8 (a UTF-8 byte order mark is fine), naming the line of
    the first bad byte, before any row is written."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for block in blocks:
        try:
            decoder.decode(block)
        except UnicodeDecodeError as exc:
            line += block.count(b"\n", 0, exc.start)
            raise InvalidInput(
                "invalid_encoding",
                f"the file is not UTF-8: line {line} has a byte that is not (save it as UTF-8)",
                field="file",
            ) from None
        line += block.count(b"\n")
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        raise InvalidInput(
            "invalid_encoding", "the file is not UTF-8: it ends inside a character", field="file"
        ) from None

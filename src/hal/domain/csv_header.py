"""Which field each column of an import file fills (README "Batch writes and imports"), as a
pure function of the header row, the kind of file and the caller's options.

A column is matched by its name with case, surrounding space and the separators `-`, `_` and
space ignored (`User ID`, `user_id` and `USER-ID` are one name), against the field names and
the names CRMs give them in their exports (`ALIASES`). The caller's mapping comes first: it
names a column and the field it fills, or nothing to skip it. A column matching nothing is
refused, unless unknown columns are kept: each then fills the metadata key made from its name
(`metadata_key`). Two columns filling one field is an error naming both; nothing is guessed.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum

from hal.domain.errors import InvalidInput

METADATA_PREFIX = "metadata."


class ImportKind(StrEnum):
    CONTACTS = "contacts"
    COMPANIES = "companies"


COLUMNS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.CONTACTS: ("user_id", "email", "name", "company_id", "company_name", "stage"),
    ImportKind.COMPANIES: ("id", "name", "stage"),
}
# A contact row is named by one of these; a company row by its id.
KEYS: dict[ImportKind, tuple[str, ...]] = {
    ImportKind.CONTACTS: ("user_id", "email"),
    ImportKind.COMPANIES: ("id",),
}

# What HubSpot, Intercom and Salesforce exports call the fields HAL has (as matched: lower
# case, single spaces). A CRM's own record id (`Record ID`, `Contact ID`) is not a user_id:
# it names the person in that CRM, not in the customer's product, so it is not aliased.
ALIASES: dict[ImportKind, dict[str, tuple[str, ...]]] = {
    ImportKind.CONTACTS: {
        "user_id": ("user id", "userid", "external id", "external user id"),
        "email": ("email", "email address", "e mail", "e mail address"),
        "name": ("name", "full name", "contact name"),
        "company_id": ("company id", "account id", "associated company id"),
        "company_name": (
            "company name",
            "company",
            "account name",
            "associated company",
            "organization",
            "organization name",
        ),
        "stage": ("stage", "lifecycle stage", "lifecyclestage", "company stage"),
    },
    ImportKind.COMPANIES: {
        "id": ("id", "company id", "account id", "external id"),
        "name": (
            "name",
            "company name",
            "company",
            "account name",
            "organization",
            "organization name",
        ),
        "stage": ("stage", "lifecycle stage", "lifecyclestage", "company stage"),
    },
}

_SEPARATORS = re.compile(r"[\s_\-]+")
_NOT_A_WORD = re.compile(r"[\W_]+")


def name_key(name: str) -> str:
    """A column's name as it is matched: lower case, `-`, `_` and runs of space as one space."""
    return _SEPARATORS.sub(" ", name.casefold()).strip()


_FIELD_OF: dict[ImportKind, dict[str, str]] = {
    kind: {
        **{name_key(field): field for field in COLUMNS[kind]},
        **{alias: field for field, aliases in ALIASES[kind].items() for alias in aliases},
    }
    for kind in ImportKind
}


def metadata_key(name: str) -> str:
    """The metadata key an unknown column fills: its name in lower case, every run of
    characters that are not letters or digits made one `_`, none at either end
    (`Phone Number` -> `phone_number`, `Lead Source (Original)` -> `lead_source_original`,
    `Straße` -> `straße`)."""
    return _NOT_A_WORD.sub("_", name.lower()).strip("_")


def parse_mapping(entries: Iterable[str]) -> dict[str, str]:
    """`User ID=user_id,Plan=metadata.plan` (from one or several options) as column -> field.
    Entries are split at commas; a column name may hold a comma or `=` (the field is what
    follows the last `=`, and a part without `=` belongs to the next one). An empty field
    skips the column."""
    mapping: dict[str, str] = {}
    for entry in entries:
        pending = ""
        for part in entry.split(","):
            pending = f"{pending},{part}" if pending else part
            if "=" not in part:
                continue
            column, field = pending.rsplit("=", 1)
            pending = ""
            column, field = column.strip(), field.strip()
            if not column:
                raise InvalidInput(
                    "invalid_mapping", f"{entry!r}: a mapping is COLUMN=FIELD", field="map"
                )
            if name_key(column) in {name_key(c) for c in mapping}:
                raise InvalidInput(
                    "invalid_mapping", f"column {column!r} is mapped twice", field="map"
                )
            mapping[column] = field
        if pending.strip():
            raise InvalidInput(
                "invalid_mapping",
                f"{pending.strip()!r} has no '=': a mapping is COLUMN=FIELD, "
                "or COLUMN= to skip the column",
                field="map",
            )
    return mapping


@dataclass(frozen=True)
class Header:
    """The file's columns (their names as written, stripped) and the field each fills:
    a field of the kind, `metadata.KEY`, or None for a skipped column."""

    kind: ImportKind
    columns: tuple[str, ...]
    fields: tuple[str | None, ...]

    def column_of(self, field: str | None) -> str | None:
        """The file's name for the column filling `field` (the field itself when none does)."""
        if field is None:
            return None
        for column, filled in zip(self.columns, self.fields, strict=True):
            if filled == field:
                return column
        return field


def _check_field(kind: ImportKind, field: str, *, column: str, max_key_length: int) -> str:
    """A mapping's target: a field of the kind (matched as a column name is) or
    `metadata.KEY` (the key as written)."""
    if name_key(field).startswith(METADATA_PREFIX):
        field = METADATA_PREFIX + field[len(METADATA_PREFIX) :]
        key = field[len(METADATA_PREFIX) :]
        if not key or len(key) > max_key_length:
            raise InvalidInput(
                "invalid_mapping",
                f"{column}={field}: a metadata key is 1-{max_key_length} characters",
                field="map",
            )
        return field
    named = {name_key(known): known for known in COLUMNS[kind]}
    if name_key(field) not in named:
        raise InvalidInput(
            "invalid_mapping",
            f"{column}={field}: {field!r} is not a {kind} field; fields: "
            f"{', '.join(COLUMNS[kind])}, metadata.KEY, or nothing to skip the column",
            field="map",
        )
    return named[name_key(field)]


def _field_of(
    kind: ImportKind,
    column: str,
    *,
    mapping: Mapping[str, str],
    keep_unknown: bool,
    max_key_length: int,
) -> str | None:
    key = name_key(column)
    if key in mapping:
        target = mapping[key]
        if not target:
            return None
        return _check_field(kind, target, column=column, max_key_length=max_key_length)
    if key.startswith(METADATA_PREFIX):
        metadata = column.strip()[len(METADATA_PREFIX) :].strip()
        if not metadata or len(metadata) > max_key_length:
            raise InvalidInput(
                "invalid_column",
                f"column {column!r}: a metadata key is 1-{max_key_length} characters",
                field=column,
            )
        return METADATA_PREFIX + metadata
    if key in _FIELD_OF[kind]:
        return _FIELD_OF[kind][key]
    if not keep_unknown or not column:
        raise InvalidInput(
            "unknown_column",
            f"column {column!r} is not a {kind} column; known: {', '.join(COLUMNS[kind])} "
            "and metadata.KEY, or their usual names in CRM exports. Map it to a field "
            "('COLUMN=FIELD'), skip it ('COLUMN='), or keep unknown columns as metadata",
            field=column or "header",
        )
    derived = metadata_key(column)
    if not derived or len(derived) > max_key_length:
        raise InvalidInput(
            "invalid_column",
            f"column {column!r} makes the metadata key {derived!r}, which is not 1-"
            f"{max_key_length} characters: map it to a key",
            field=column,
        )
    return METADATA_PREFIX + derived


def read_header(
    kind: ImportKind,
    names: list[str] | None,
    *,
    mapping: Mapping[str, str] | None = None,
    keep_unknown: bool = False,
    max_key_length: int = 64,
) -> Header:
    """The field of each column, or the header's fault: no header, a column named twice, an
    unknown column (unless `keep_unknown`), two columns for one field, a mapping naming a
    column the file does not have, no key column."""
    if not names or all(not name.strip() for name in names):
        raise InvalidInput(
            "missing_header",
            f"the file has no header row; the first line names the columns "
            f"({', '.join(COLUMNS[kind])}, metadata.KEY)",
            field="header",
        )
    columns = tuple(name.strip() for name in names)
    wanted = {name_key(column): field for column, field in (mapping or {}).items()}
    seen: set[str] = set()
    for column in columns:
        if column in seen:
            raise InvalidInput(
                "duplicate_column", f"column {column!r} appears twice in the header", field=column
            )
        seen.add(column)
    for key in wanted:
        if not any(name_key(column) == key for column in columns):
            column = next(c for c in mapping or {} if name_key(c) == key)
            raise InvalidInput(
                "invalid_mapping", f"the file has no column {column!r} to map", field="map"
            )
    fields = tuple(
        _field_of(kind, column, mapping=wanted, keep_unknown=keep_unknown,
                  max_key_length=max_key_length)
        for column in columns
    )  # fmt: skip
    filled: dict[str, str] = {}
    for column, field in zip(columns, fields, strict=True):
        if field is None:
            continue
        if field in filled:
            raise InvalidInput(
                "ambiguous_columns",
                f"columns {filled[field]!r} and {column!r} both fill {field}: map one of them "
                "to another field, or skip it",
                field=column,
            )
        filled[field] = column
    if not set(filled).intersection(KEYS[kind]):
        raise InvalidInput(
            "missing_column",
            f"a {kind} file needs a {' or '.join(KEYS[kind])} column",
            field=KEYS[kind][0],
        )
    return Header(kind, columns, fields)

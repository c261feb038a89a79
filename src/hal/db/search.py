"""The search language (hal.domain.search) as SQL, on SQLite (JSON1) and PostgreSQL (JSONB).

Each condition becomes a typed value expression that is NULL when the value is missing or not
of its attribute's type (a CASE, so PostgreSQL never casts a value of the wrong type), and
the meaning of `matches` is spelled out over it: a positive operator holds on the value; a
negation holds on a missing value or on a value of the type for which the positive does not.
Strings compare with the case-folded copies the store writes (`search_*` columns)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    ColumnElement,
    Float,
    Select,
    Table,
    and_,
    case,
    cast,
    false,
    func,
    not_,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import JSONB

from hal.db.store.base import COMPANIES, CONTACTS, DEALS, EVENTS, LINKS
from hal.domain.attributes import AttrType, format_date
from hal.domain.search import (
    NEGATIVE_OPS,
    Condition,
    EventCondition,
    FieldSpec,
    Group,
    Node,
)

# The canonical stored date (hal.domain.attributes.CANONICAL_DATE), for each engine.
_DIGITS = {n: "[0-9]" * n for n in (2, 4, 6)}
_DATE_GLOB = (
    "{4}-{2}-{2}T{2}:{2}:{2}.{6}Z".replace("{4}", _DIGITS[4])
    .replace("{6}", _DIGITS[6])
    .replace("{2}", _DIGITS[2])
)
_DATE_REGEX = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$"

# Built-in fields: (the value column, the case-folded copy strings compare with).
_BUILTINS: dict[str, dict[str, tuple[str, str | None]]] = {
    "contacts": {
        "user_id": ("user_id", "search_user_id"),
        "email": ("email_normalized", "search_email"),
        "name": ("name", "search_name"),
        "verified": ("verified", None),
        "created_at": ("created_at", None),
        "last_seen_at": ("last_seen_at", None),
    },
    "companies": {
        "id": ("external_id", "search_external_id"),
        "name": ("name", "search_name"),
        "stage": ("stage", "search_stage"),
        "created_at": ("created_at", None),
    },
    "conversations": {
        "status": ("status", "status"),  # always lower case
        "created_at": ("created_at", None),
        "updated_at": ("last_message_at", None),
    },
    "deals": {
        "status": ("status", "status"),  # always lower case
        "amount": ("amount", None),
    },
}


@dataclass(frozen=True)
class Value:
    """A field of a row as the query sees it."""

    missing: ColumnElement[bool]
    typed: ColumnElement[Any]  # NULL when missing or not of the type


class Compiler:
    """Conditions on one table's rows (contacts, companies or conversations), for one
    engine."""

    def __init__(self, dialect: str) -> None:
        self.postgres = dialect == "postgresql"

    # --- reading a value ------------------------------------------------------------------

    def _json(self, document: Any, key: str, as_text: bool) -> Any:
        if self.postgres:
            node = type_coerce(document, JSONB)
            return node[key].astext if as_text else node[key]
        return func.json_extract(document, f'$."{key}"')

    def _json_type(self, document: Any, key: str) -> Any:
        if self.postgres:
            return func.jsonb_typeof(type_coerce(document, JSONB)[key])
        return func.json_type(document, f'$."{key}"')

    def value(self, table: Table, spec: FieldSpec) -> Value:
        if spec.source == "builtin":
            if spec.name == "contact_count":
                return Value(false(), _contact_count(table))
            column, folded = _BUILTINS[table.name][spec.name]
            source = table.c[column]
            typed = table.c[folded] if folded is not None else source
            return Value(source.is_(None), typed)
        key = spec.name
        kind = self._json_type(table.c.metadata, key)
        missing = or_(kind.is_(None), kind == "null")
        if spec.type in (AttrType.STRING, AttrType.LIST):
            folded_kind = self._json_type(table.c.search_metadata, key)
            string = folded_kind == ("string" if self.postgres else "text")
            return Value(missing, case((string, self._json(table.c.search_metadata, key, True))))
        if spec.type is AttrType.NUMBER:
            number = kind == "number" if self.postgres else kind.in_(("integer", "real"))
            raw = self._json(table.c.metadata, key, True)
            return Value(missing, case((number, cast(raw, Float) if self.postgres else raw)))
        if spec.type is AttrType.BOOLEAN:
            boolean = kind == "boolean" if self.postgres else kind.in_(("true", "false"))
            raw = self._json(table.c.metadata, key, True)
            flag: Any = cast(raw, Boolean) if self.postgres else raw
            return Value(missing, case((boolean, flag)))
        # A date: a string in the canonical stored form, compared as text.
        text = self._json(table.c.metadata, key, True)
        string = kind == ("string" if self.postgres else "text")
        shaped = text.regexp_match(_DATE_REGEX) if self.postgres else text.op("GLOB")(_DATE_GLOB)
        return Value(missing, case((and_(string, shaped), text)))

    # --- comparing ------------------------------------------------------------------------

    def _wanted(self, spec: FieldSpec, value: Any) -> Any:
        """The query's value as the typed expression compares with it."""
        if spec.type is AttrType.DATE and spec.source == "metadata":
            return format_date(value)
        if spec.type is AttrType.BOOLEAN and not self.postgres and spec.source == "metadata":
            return 1 if value else 0
        return value

    def _positive(self, op: str, have: Any, wanted: Any) -> ColumnElement[bool]:
        match op:
            case "=" | "!=":
                return have == wanted  # type: ignore[no-any-return]
            case "IN" | "NIN":
                return have.in_(list(wanted))  # type: ignore[no-any-return]
            case "<":
                return have < wanted  # type: ignore[no-any-return]
            case ">":
                return have > wanted  # type: ignore[no-any-return]
            case "<=":
                return have <= wanted  # type: ignore[no-any-return]
            case ">=":
                return have >= wanted  # type: ignore[no-any-return]
            case "~" | "!~":
                position = func.strpos(have, wanted) if self.postgres else func.instr(have, wanted)
                return position > 0
            case "^":
                return func.substr(have, 1, len(wanted)) == wanted  # type: ignore[no-any-return]
            case "$":
                size = len(wanted)
                tail = func.substr(have, func.length(have) - size + 1)
                return and_(func.length(have) >= size, tail == wanted)
        raise ValueError(f"unknown operator {op}")

    def holds(self, op: str, value: Value, spec: FieldSpec, wanted: Any) -> ColumnElement[bool]:
        """`domain.search.holds`, for one row's value."""
        if op == "exists":
            return not_(value.missing)
        if op == "!exists":
            return value.missing
        if op in ("IN", "NIN"):
            target: Any = [self._wanted(spec, v) for v in wanted]
        else:
            target = self._wanted(spec, wanted)
        positive = self._positive(op, value.typed, target)
        if op in NEGATIVE_OPS:
            return or_(value.missing, and_(value.typed.is_not(None), not_(positive)))
        return and_(value.typed.is_not(None), positive)

    # --- the query ------------------------------------------------------------------------

    def condition(self, node: Node, table: Table) -> ColumnElement[bool]:
        """The query on `table`'s rows, with their related records and events."""
        if isinstance(node, Group):
            parts = [self.condition(child, table) for child in node.children]
            return and_(*parts) if node.op == "AND" else or_(*parts)
        if isinstance(node, EventCondition):
            return self._events(node, table)
        spec = node.spec
        if spec.relation is None:
            return self.holds(node.op, self.value(table, spec), spec, node.value)
        return self._related(node, table)

    def _related(self, node: Condition, table: Table) -> ColumnElement[bool]:
        """A condition on related records: any of them holds it; none is a missing value."""
        spec = node.spec
        related, link = _relation(table, spec.relation)
        value = self.value(related, spec)
        holding = link.where(self.holds(node.op, value, spec, node.value)).exists()
        if node.op not in NEGATIVE_OPS:
            return holding
        return or_(not_(link.exists()), holding)

    def _events(self, node: EventCondition, table: Table) -> ColumnElement[bool]:
        owner = EVENTS.c.contact_id if table is CONTACTS else EVENTS.c.company_id
        counted = select(func.count()).where(owner == table.c.id, EVENTS.c.name == node.name)
        if node.since is not None:
            counted = counted.where(EVENTS.c.occurred_at >= node.since)
        count = counted.scalar_subquery()
        match node.op:
            case "exists":
                return count >= 1
            case "!exists":
                return count == 0
        spec = FieldSpec(AttrType.NUMBER, "builtin", "count")
        have = Value(false(), count)
        wanted = tuple(map(float, node.value)) if node.op in ("IN", "NIN") else float(node.value)
        return self.holds(node.op, have, spec, wanted)


def _relation(table: Table, relation: str | None) -> tuple[Table, Select[Any]]:
    """The table of a record's related records and a SELECT of those related to the row."""
    if relation == "deal":
        return DEALS, select(DEALS.c.id).where(DEALS.c.company_id == table.c.id)
    if relation == "contact":
        return CONTACTS, select(CONTACTS.c.id).where(
            CONTACTS.c.id == table.c.contact_id, CONTACTS.c.erased_at.is_(None)
        )
    if table is CONTACTS:
        linked = select(COMPANIES.c.id).join(LINKS, LINKS.c.company_id == COMPANIES.c.id)
        return COMPANIES, linked.where(LINKS.c.contact_id == table.c.id)
    return COMPANIES, select(COMPANIES.c.id).where(COMPANIES.c.id == table.c.company_id)


def _contact_count(table: Table) -> ColumnElement[Any]:
    """A company's linked contacts (erased ones left out)."""
    return (
        select(func.count())
        .select_from(LINKS.join(CONTACTS, CONTACTS.c.id == LINKS.c.contact_id))
        .where(LINKS.c.company_id == table.c.id, CONTACTS.c.erased_at.is_(None))
        .scalar_subquery()
    )

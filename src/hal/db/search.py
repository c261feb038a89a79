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
    count_holds,
)

# The canonical stored date (hal.domain.attributes.CANONICAL_DATE), for each engine.
_DIGITS = {n: "[0-9]" * n for n in (2, 4, 6)}
_DATE_GLOB = (
    "{4}-{2}-{2}T{2}:{2}:{2}.{6}Z".replace("{4}", _DIGITS[4])
    .replace("{6}", _DIGITS[6])
    .replace("{2}", _DIGITS[2])
)
_DATE_SHAPE = "0000-00-00T00:00:00.000000Z"

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
    typed: ColumnElement[Any]  # NULL when missing or not of the type (what a sort reads)
    # A condition may compare the stored value first and check its type (`guard`) after, so
    # only the rows the comparison keeps pay for the check (a date's shape).
    raw: ColumnElement[Any] | None = None
    guard: ColumnElement[bool] | None = None


class Compiler:
    """Conditions on one project's rows of one table (contacts, companies or conversations),
    for one engine."""

    def __init__(self, dialect: str, project_id: int) -> None:
        self.postgres = dialect == "postgresql"
        self.project_id = project_id

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
            # The folded copy holds the string values alone: a value of another type is absent.
            return Value(missing, self._json(table.c.search_metadata, key, True))
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
        # Only a string has the canonical form's shape (a number's text has no '-' or 'T').
        text = self._json(table.c.metadata, key, True)
        if self.postgres:  # every digit made 0: the canonical form's shape (a regex costs 5x)
            shaped = func.translate(text, "123456789", "000000000") == _DATE_SHAPE
        else:
            shaped = text.op("GLOB")(_DATE_GLOB)
        return Value(missing, case((shaped, text)), raw=text, guard=shaped)

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
        # A comparison with a NULL value (missing, or not of the type) is NULL, which a WHERE
        # treats as false; no NOT is ever put above a condition, so NULL never turns true.
        if value.raw is None or value.guard is None:
            positive = self._positive(op, value.typed, target)
            if op in NEGATIVE_OPS:
                return or_(value.missing, not_(positive))
            return positive
        compared = self._positive(op, value.raw, target)
        if op in NEGATIVE_OPS:
            return or_(value.missing, and_(value.guard, not_(compared)))
        return and_(compared, value.guard)

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
        """A condition on related records: any of them holds it; none is a missing value.
        The related records that hold it are read once (an uncorrelated IN), not per row."""
        spec = node.spec
        related, key, holders, linked = self._relation(table, spec.relation)
        value = self.value(related, spec)
        holding = key.in_(holders.where(self.holds(node.op, value, spec, node.value)))
        if node.op not in NEGATIVE_OPS:
            return holding
        return or_(not_(linked), holding)

    def _relation(
        self, table: Table, relation: str | None
    ) -> tuple[Table, ColumnElement[Any], Select[Any], ColumnElement[bool]]:
        """For a row of `table` and its related records: their table, the row's column that
        names them, a SELECT of the names of the project's related records (to filter), and
        whether the row has any."""
        has: ColumnElement[bool]
        if relation == "deal":
            has = select(DEALS.c.id).where(DEALS.c.company_id == table.c.id).exists()
            return DEALS, table.c.id, select(DEALS.c.company_id), has
        if relation == "contact":
            live = select(CONTACTS.c.id).where(
                CONTACTS.c.project_id == self.project_id, CONTACTS.c.erased_at.is_(None)
            )
            # A NULL contact_id must read as "none", never as NULL: NOT NULL stays NULL.
            has = and_(table.c.contact_id.is_not(None), table.c.contact_id.in_(live))
            return CONTACTS, table.c.contact_id, live, has
        if table is CONTACTS:
            links = (
                select(LINKS.c.contact_id)
                .join(COMPANIES, COMPANIES.c.id == LINKS.c.company_id)
                .where(COMPANIES.c.project_id == self.project_id)
            )
            has = select(LINKS.c.company_id).where(LINKS.c.contact_id == table.c.id).exists()
            return COMPANIES, table.c.id, links, has
        ids = select(COMPANIES.c.id).where(COMPANIES.c.project_id == self.project_id)
        return COMPANIES, table.c.company_id, ids, table.c.company_id.is_not(None)

    def _events(self, node: EventCondition, table: Table) -> ColumnElement[bool]:
        """The records whose events of that name (since `since`) are counted as the condition
        says, as one grouped read of the project's events (not a count per record): the
        owners whose count holds; or, when a count of 0 holds, all but those whose does not."""
        owner = EVENTS.c.contact_id if table is CONTACTS else EVENTS.c.company_id
        events = select(owner).where(
            EVENTS.c.project_id == self.project_id, EVENTS.c.name == node.name, owner.is_not(None)
        )
        if node.since is not None:
            events = events.where(EVENTS.c.occurred_at >= node.since)
        counted = self._count_holds(node, func.count())
        grouped = events.group_by(owner)
        if not count_holds(node.op, 0, node.value):
            return table.c.id.in_(grouped.having(counted))
        return table.c.id.not_in(grouped.having(not_(counted)))

    def _count_holds(self, node: EventCondition, count: Any) -> ColumnElement[bool]:
        match node.op:
            case "exists":
                return count >= 1  # type: ignore[no-any-return]
            case "!exists":
                return count == 0  # type: ignore[no-any-return]
        spec = FieldSpec(AttrType.NUMBER, "builtin", "count")
        have = Value(false(), count)
        wanted = tuple(map(float, node.value)) if node.op in ("IN", "NIN") else float(node.value)
        return self.holds(node.op, have, spec, wanted)


def _contact_count(table: Table) -> ColumnElement[Any]:
    """A company's linked contacts (erased ones left out)."""
    return (
        select(func.count())
        .select_from(LINKS.join(CONTACTS, CONTACTS.c.id == LINKS.c.contact_id))
        .where(LINKS.c.company_id == table.c.id, CONTACTS.c.erased_at.is_(None))
        .scalar_subquery()
    )

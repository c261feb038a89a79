"""The search language (README "Search with filters"), stated once: a query is read and
checked here against the fields a model has, and `matches` is its meaning in plain Python.
The SQL the store runs (db/search.py) is held to `matches` by property tests.

Meaning, in short:
- a missing value (absent or null) matches only `!exists`, `!=`, `NIN` and `!~`;
- a stored value not of its attribute's type matches only `exists` (and never a negation);
- strings compare after Unicode case folding;
- `company.X` (and a conversation's `contact.X`) holds when any related record holds it; no
  related record is a missing value;
- `event` counts the record's events of that name (since `since`); never tracked is 0.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from hal.domain.attributes import AttrType, conforms, parse_date
from hal.domain.errors import InvalidInput

MAX_DEPTH = 3
MAX_CONDITIONS = 20
MAX_VALUES = 100
MAX_STRING = 1000
MAX_EVENT_NAME = 128

STRING_OPS = ("=", "!=", "IN", "NIN", "~", "!~", "^", "$")
ORDER_OPS = ("=", "!=", "IN", "NIN", "<", ">", "<=", ">=")
OPERATORS: dict[AttrType, tuple[str, ...]] = {
    AttrType.STRING: STRING_OPS,
    AttrType.NUMBER: ORDER_OPS,
    AttrType.DATE: ORDER_OPS,
    AttrType.BOOLEAN: ("=", "!="),
    AttrType.LIST: ("=", "!=", "IN", "NIN"),
}
PRESENCE_OPS = ("exists", "!exists")
# Operators a missing value satisfies.
NEGATIVE_OPS = frozenset({"!=", "NIN", "!~", "!exists"})
SORTABLE = (AttrType.STRING, AttrType.NUMBER, AttrType.DATE)
_RELATIVE = re.compile(r"-(\d{1,6})([dhm])")


class Kind(StrEnum):
    """What a search (and a saved view) finds."""

    CONTACTS = "contacts"
    COMPANIES = "companies"
    CONVERSATIONS = "conversations"


@dataclass(frozen=True)
class FieldSpec:
    """A searchable field: its type, its list options, and where it lives. `relation` is
    None for the record's own fields, else the related records' kind: "company" (a
    contact's linked companies, a conversation's company), "contact" (a conversation's
    contact) or "deal" (a company's deals); `source` is "builtin" (a column) or "metadata"
    (a key of the metadata document)."""

    type: AttrType
    source: str  # builtin | metadata
    name: str  # the column, or the metadata key
    relation: str | None = None
    options: tuple[str, ...] = ()


Catalog = Mapping[str, FieldSpec]


@dataclass(frozen=True)
class Condition:
    field: str
    spec: FieldSpec
    op: str
    value: Any  # normalized: folded str, float, bool, datetime; a tuple for IN and NIN


@dataclass(frozen=True)
class EventCondition:
    name: str
    op: str
    value: Any  # an int, a tuple of ints for IN and NIN, or None for exists / !exists
    since: datetime | None


@dataclass(frozen=True)
class Group:
    op: str  # AND | OR
    children: tuple[Node, ...]


Node = Condition | EventCondition | Group


@dataclass(frozen=True)
class Sort:
    field: str
    spec: FieldSpec
    descending: bool


def fold(text: str) -> str:
    """Strings compare after Unicode case folding."""
    return text.casefold()


def folded(metadata: Mapping[str, Any] | None) -> dict[str, Any]:
    """The case-folded copy of a metadata document that string conditions compare with: its
    string values folded; other values left out."""
    return {key: fold(value) for key, value in (metadata or {}).items() if isinstance(value, str)}


def fold_text(value: str | None) -> str | None:
    return fold(value) if value is not None else None


def _refuse(path: str, message: str) -> InvalidInput:
    return InvalidInput("invalid_query", message, field=path)


@dataclass
class _Reader:
    catalog: Catalog
    now: datetime
    events: bool
    conditions: int = 0

    def node(self, body: Any, path: str, depth: int) -> Node:
        if not isinstance(body, dict):
            raise _refuse(path, "a query is a condition or a group (a JSON object)")
        if body.get("operator") in ("AND", "OR") and "field" not in body:
            return self.group(body, path, depth + 1)
        return self.condition(body, path)

    def group(self, body: dict[str, Any], path: str, depth: int) -> Group:
        if depth > MAX_DEPTH:
            raise _refuse(path, f"groups nest at most {MAX_DEPTH} deep")
        _only(body, {"operator", "value"}, path)
        children = body.get("value")
        if not isinstance(children, list) or not children:
            raise _refuse(f"{path}.value", "a group's value is a non-empty list of queries")
        nodes = tuple(
            self.node(child, f"{path}.value[{i}]", depth) for i, child in enumerate(children)
        )
        return Group(str(body["operator"]), nodes)

    def condition(self, body: dict[str, Any], path: str) -> Node:
        self.conditions += 1
        if self.conditions > MAX_CONDITIONS:
            raise _refuse(path, f"a query holds at most {MAX_CONDITIONS} conditions")
        name = body.get("field")
        if not isinstance(name, str):
            raise _refuse(f"{path}.field", "a condition names its field")
        if name == "event":
            return self.event(body, path)
        _only(body, {"field", "operator", "value"}, path)
        spec = self.catalog.get(name)
        if spec is None:
            raise _refuse(f"{path}.field", f"no field {name!r} to search here")
        op = body.get("operator")
        if op in PRESENCE_OPS:
            _no_value(body, path)
            return Condition(name, spec, str(op), None)
        if op not in OPERATORS[spec.type]:
            allowed = ", ".join((*OPERATORS[spec.type], *PRESENCE_OPS))
            raise _refuse(f"{path}.operator", f"{name} is a {spec.type} field: use {allowed}")
        value = self.values(body, str(op), path, lambda v, p: self.value(v, spec, p))
        return Condition(name, spec, str(op), value)

    def event(self, body: dict[str, Any], path: str) -> EventCondition:
        if not self.events:
            raise _refuse(f"{path}.field", "these records have no events to count")
        _only(body, {"field", "event", "operator", "value", "since"}, path)
        name = body.get("event")
        if not isinstance(name, str) or not 1 <= len(name) <= MAX_EVENT_NAME:
            raise _refuse(f"{path}.event", "event names the event: 1-128 characters")
        since = None
        if body.get("since") is not None:
            since = self.date(body["since"], f"{path}.since")
        op = body.get("operator")
        if op in PRESENCE_OPS:
            _no_value(body, path)
            return EventCondition(name, str(op), None, since)
        if op not in ORDER_OPS:
            allowed = ", ".join((*ORDER_OPS, *PRESENCE_OPS))
            raise _refuse(f"{path}.operator", f"an event count takes {allowed}")
        value = self.values(body, str(op), path, _count)
        return EventCondition(name, str(op), value, since)

    def values(self, body: dict[str, Any], op: str, path: str, one: Any) -> Any:
        value = body.get("value")
        if op in ("IN", "NIN"):
            if not isinstance(value, list) or not 1 <= len(value) <= MAX_VALUES:
                raise _refuse(f"{path}.value", f"{op} takes a list of 1-{MAX_VALUES} values")
            return tuple(one(v, f"{path}.value[{i}]") for i, v in enumerate(value))
        return one(value, f"{path}.value")

    def value(self, value: Any, spec: FieldSpec, path: str) -> Any:
        match spec.type:
            case AttrType.STRING | AttrType.LIST:
                if not isinstance(value, str) or len(value) > MAX_STRING:
                    raise _refuse(path, f"a string of at most {MAX_STRING} characters")
                if spec.type is AttrType.LIST and value not in spec.options:
                    raise _refuse(path, f"one of the options {list(spec.options)}")
                return fold(value)
            case AttrType.NUMBER:
                if not _is_number(value):
                    raise _refuse(path, "a number")
                return float(value)
            case AttrType.BOOLEAN:
                if not isinstance(value, bool):
                    raise _refuse(path, "true or false")
                return value
            case AttrType.DATE:
                return self.date(value, path)
        raise _refuse(path, "a value")  # pragma: no cover (every type is matched above)

    def date(self, value: Any, path: str) -> datetime:
        """ISO-8601, unix seconds, or relative to now: `-7d`, `-24h`, `-30m`."""
        if isinstance(value, str) and (relative := _RELATIVE.fullmatch(value)):
            amount, unit = int(relative.group(1)), relative.group(2)
            delta = {"d": timedelta(days=amount), "h": timedelta(hours=amount)}.get(
                unit, timedelta(minutes=amount)
            )
            return self.now - delta
        moment = parse_date(value)
        if moment is None:
            raise _refuse(path, "a date: ISO-8601, unix seconds, or -7d, -24h, -30m")
        return moment


# Stored numbers are at most this large (hal.domain.limits.Limits.max_abs_number).
MAX_NUMBER = 2.0**53


def _is_number(value: Any) -> bool:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    return abs(value) <= MAX_NUMBER and (isinstance(value, int) or math.isfinite(value))


def _count(value: Any, path: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**31:
        raise _refuse(path, "an event count is a whole number, 0 or more")
    return value


def _only(body: dict[str, Any], keys: set[str], path: str) -> None:
    for key in body:
        if key not in keys:
            raise _refuse(f"{path}.{key}", f"{key!r} has no meaning here")


def _no_value(body: dict[str, Any], path: str) -> None:
    if body.get("value") is not None:
        raise _refuse(f"{path}.value", "exists and !exists take no value")


def parse_query(
    body: Any, catalog: Catalog, *, now: datetime, events: bool, path: str = "query"
) -> Node:
    """Read and check a query; 422 `invalid_query` naming the path of what is wrong."""
    return _Reader(catalog, now, events).node(body, path, 0)


def parse_sort(body: Any, catalog: Catalog, *, default: Sort, path: str = "sort") -> Sort:
    """`{"field", "order": "asc" | "desc"}`: a built-in or a number, date or string field of
    the record itself."""
    if body is None:
        return default
    if not isinstance(body, dict):
        raise _refuse(path, 'sort is {"field": ..., "order": "asc" | "desc"}')
    _only(body, {"field", "order"}, path)
    name = body.get("field")
    spec = catalog.get(name) if isinstance(name, str) else None
    if spec is None or spec.relation is not None or spec.type not in SORTABLE:
        raise _refuse(f"{path}.field", "sort by a built-in or a number, date or string field")
    order = body.get("order", "asc")
    if order not in ("asc", "desc"):
        raise _refuse(f"{path}.order", "asc or desc")
    return Sort(str(name), spec, order == "desc")


# --- the meaning ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Record:
    """What a query is evaluated on: the record's own values by field name (a missing field is
    absent or None; built-in dates as datetimes, metadata values as stored), its related
    records' values ("company": the linked companies, or a conversation's company; "contact":
    a conversation's contact), and its events (name, occurred_at)."""

    values: Mapping[str, Any]
    related: Mapping[str, Sequence[Mapping[str, Any]]] = field(default_factory=dict)
    events: Sequence[tuple[str, datetime]] = ()


def stored_value(values: Mapping[str, Any], spec: FieldSpec) -> Any:
    """The value a field names in a record's values (by its own name, without relation)."""
    key = spec.name if spec.source == "builtin" else f"metadata.{spec.name}"
    return values.get(key)


def _typed(value: Any, type_: AttrType) -> Any:
    """A conforming stored value as the query compares it."""
    if isinstance(value, datetime):
        return value
    if type_ is AttrType.DATE:
        return parse_date(value)
    if type_ in (AttrType.STRING, AttrType.LIST):
        return fold(value)
    if type_ is AttrType.NUMBER:
        return float(value)
    return value


def holds(op: str, value: Any, wanted: Any, type_: AttrType) -> bool:
    """Whether one stored value (None: missing) satisfies a condition."""
    if value is None:
        return op in NEGATIVE_OPS
    if op == "exists":
        return True
    if op == "!exists":
        return False
    is_date = type_ is AttrType.DATE and isinstance(value, datetime)
    if not is_date and not conforms(value, type_):
        return False
    have = _typed(value, type_)
    match op:
        case "=":
            return bool(have == wanted)
        case "!=":
            return bool(have != wanted)
        case "IN":
            return have in wanted
        case "NIN":
            return have not in wanted
        case "<":
            return bool(have < wanted)
        case ">":
            return bool(have > wanted)
        case "<=":
            return bool(have <= wanted)
        case ">=":
            return bool(have >= wanted)
        case "~":
            return bool(wanted in have)
        case "!~":
            return bool(wanted not in have)
        case "^":
            return bool(have.startswith(wanted))
        case "$":
            return bool(have.endswith(wanted))
    raise ValueError(f"unknown operator {op}")


def count_holds(op: str, count: int, wanted: Any) -> bool:
    """Whether an event count satisfies an `event` condition's operator and value."""
    match op:
        case "exists":
            return count >= 1
        case "!exists":
            return count == 0
    return holds(op, float(count), tuple(map(float, wanted)) if op in ("IN", "NIN")
                 else float(wanted), AttrType.NUMBER)  # fmt: skip


def matches(node: Node, record: Record) -> bool:
    """Whether the record is one the query finds."""
    if isinstance(node, Group):
        results = (matches(child, record) for child in node.children)
        return all(results) if node.op == "AND" else any(results)
    if isinstance(node, EventCondition):
        count = sum(
            1
            for name, at in record.events
            if name == node.name and (node.since is None or at >= node.since)
        )
        return count_holds(node.op, count, node.value)
    spec = node.spec
    if spec.relation is None:
        return holds(node.op, stored_value(record.values, spec), node.value, spec.type)
    related = record.related.get(spec.relation, ())
    if not related:
        return holds(node.op, None, node.value, spec.type)
    return any(holds(node.op, stored_value(item, spec), node.value, spec.type) for item in related)

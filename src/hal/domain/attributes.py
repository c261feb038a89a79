"""Attributes and their types (README "Attributes"): every metadata key of contacts and of
companies has a type, made from its first non-null value unless an admin defined it first, and
never changed. A write is checked against the types: what fits is written (dates in one
canonical form), what does not is named by the key and a code."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from hal.domain.errors import InvalidInput


class AttrType(StrEnum):
    STRING = "string"
    NUMBER = "number"
    BOOLEAN = "boolean"
    DATE = "date"
    LIST = "list"  # a string from the attribute's options


class Model(StrEnum):
    CONTACT = "contact"
    COMPANY = "company"


class Source(StrEnum):
    AUTO = "auto"
    ADMIN = "admin"
    BUILTIN = "builtin"


MAX_OPTIONS = 200
MAX_LABEL = 255
MAX_DESCRIPTION = 1000


@dataclass(frozen=True)
class Attribute:
    """One attribute's definition."""

    model: Model
    key: str
    type: AttrType
    source: Source = Source.AUTO
    label: str | None = None
    description: str | None = None
    options: tuple[str, ...] = ()
    archived: bool = False


# The built-in fields, listed with the attributes and searchable like them (read-only).
BUILTINS: dict[Model, dict[str, AttrType]] = {
    Model.CONTACT: {
        "user_id": AttrType.STRING,
        "email": AttrType.STRING,
        "name": AttrType.STRING,
        "verified": AttrType.BOOLEAN,
        "created_at": AttrType.DATE,
        "last_seen_at": AttrType.DATE,
    },
    Model.COMPANY: {
        "id": AttrType.STRING,
        "name": AttrType.STRING,
        "stage": AttrType.STRING,
        "created_at": AttrType.DATE,
        "contact_count": AttrType.NUMBER,
    },
}

_ISO_DATE = re.compile(
    r"\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?)?(Z|[+-]\d{2}:?\d{2})?"
)
# The stored form of a date: fixed width, so text order is time order.
CANONICAL_DATE = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z")
# Unix seconds taken as a date: 1970 to 9999.
MAX_UNIX_SECONDS = 253_402_300_799


def format_date(moment: datetime) -> str:
    """The canonical stored form: ISO-8601 in UTC with microseconds and `Z`."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_date(value: Any) -> datetime | None:
    """A date written as ISO-8601 (a date alone is midnight UTC, no zone is UTC) or as unix
    seconds; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value) or not 0 <= value <= MAX_UNIX_SECONDS:
            return None
        return datetime.fromtimestamp(value, UTC)
    if not isinstance(value, str) or not _ISO_DATE.fullmatch(value.strip()):
        return None
    try:
        moment = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def infer_type(key: str, value: Any) -> AttrType | None:
    """The type a first value gives a new key (None for null). A key ending in `_at` whose
    value is unix seconds or an ISO-8601 date is a date (Intercom's convention)."""
    if value is None:
        return None
    if isinstance(value, list):
        return None  # a JSON array gives no type: a later single value does
    if isinstance(value, bool):
        return AttrType.BOOLEAN
    if key.endswith("_at") and parse_date(value) is not None:
        return AttrType.DATE
    if isinstance(value, int | float):
        return AttrType.NUMBER
    return AttrType.STRING


def fit(value: Any, attribute: Attribute) -> tuple[bool, Any]:
    """Whether a written value fits the attribute's type, and the value as stored (dates in
    the canonical form). A list fits when every element does. Nothing else is converted."""
    if isinstance(value, list):
        stored = []
        for element in value:
            fits, one = fit(element, attribute)
            if not fits:
                return False, value
            stored.append(one)
        return True, stored
    match attribute.type:
        case AttrType.STRING:
            return isinstance(value, str), value
        case AttrType.NUMBER:
            return isinstance(value, int | float) and not isinstance(value, bool), value
        case AttrType.BOOLEAN:
            return isinstance(value, bool), value
        case AttrType.DATE:
            moment = parse_date(value)
            return (moment is not None, format_date(moment) if moment is not None else value)
        case AttrType.LIST:
            return isinstance(value, str) and value in attribute.options, value
    return False, value


def conforms(value: Any, type_: AttrType) -> bool:
    """Whether a stored value is of its attribute's type (values stored before the type was
    set may not be; they match only `exists` in a search)."""
    match type_:
        case AttrType.STRING | AttrType.LIST:
            return isinstance(value, str)
        case AttrType.NUMBER:
            return (
                isinstance(value, int | float)
                and not isinstance(value, bool)
                and math.isfinite(value)
            )
        case AttrType.BOOLEAN:
            return isinstance(value, bool)
        case AttrType.DATE:
            return isinstance(value, str) and CANONICAL_DATE.fullmatch(value) is not None
    return False


@dataclass(frozen=True)
class TypedWrite:
    """A metadata write after the type check: what to store, the keys it defines for the
    first time (with their types), and what did not fit (key, code)."""

    values: dict[str, Any]
    new: dict[str, AttrType] = field(default_factory=dict)
    problems: list[tuple[str, str]] = field(default_factory=list)

    def refuse(self, *, field: str = "metadata") -> None:
        """The team API's answer to a problem: 422 naming the first key."""
        if self.problems:
            key, code = self.problems[0]
            raise InvalidInput(code, _messages[code].format(key=key), field=f"{field}.{key}")

    @property
    def warnings(self) -> list[str]:
        """The widget's answer: `"attribute_type:KEY"`, ... (and the rest is written)."""
        return [f"{code}:{key}" for key, code in self.problems]


_messages = {
    "attribute_type": "the value of {key} does not fit its attribute's type",
    "attribute_archived": "{key} is an archived attribute: it takes no new values",
    "too_many_attributes": "{key} would be one attribute more than the project may have",
}


def type_write(
    metadata: Mapping[str, Any],
    known: Mapping[str, Attribute],
    *,
    model: Model,
    count: int,
    max_attributes: int,
) -> TypedWrite:
    """Check a metadata write (`null` deletes a key and always passes) against the model's
    `known` attributes, of which there are `count`; a new key is defined by its value."""
    values: dict[str, Any] = {}
    new: dict[str, AttrType] = {}
    problems: list[tuple[str, str]] = []
    for key, value in metadata.items():
        if value is None:
            values[key] = None
            continue
        attribute = known.get(key)
        if attribute is None:
            inferred = infer_type(key, value)
            if inferred is None:  # an empty list: nothing to type it by yet
                values[key] = value
                continue
            if count + len(new) >= max_attributes:
                problems.append((key, "too_many_attributes"))
                continue
            attribute = Attribute(model, key, inferred)
            new[key] = inferred
        elif attribute.archived:
            problems.append((key, "attribute_archived"))
            continue
        fits, stored = fit(value, attribute)
        if not fits:
            new.pop(key, None)
            problems.append((key, "attribute_type"))
            continue
        values[key] = stored
    return TypedWrite(values, new, problems)


def majority_type(key: str, values: Iterable[Any]) -> AttrType | None:
    """The type most stored values have (existing data's definition); ties go to the order
    string, number, boolean, date."""
    counts: dict[AttrType, int] = {}
    for value in values:
        inferred = infer_type(key, value)
        if inferred is not None:
            counts[inferred] = counts.get(inferred, 0) + 1
    order = [AttrType.STRING, AttrType.NUMBER, AttrType.BOOLEAN, AttrType.DATE]
    return max(counts, key=lambda t: (counts[t], -order.index(t)), default=None)


def check_definition(attribute: Attribute, *, max_key_length: int = 64) -> None:
    """An admin's definition: a key as metadata keys are, a label and description of sensible
    length, and options for a list attribute only (1-200 distinct, non-empty)."""
    if not 1 <= len(attribute.key) <= max_key_length:
        raise InvalidInput("invalid_field", f"key is 1-{max_key_length} characters", field="key")
    if attribute.label is not None and len(attribute.label) > MAX_LABEL:
        raise InvalidInput("too_long", f"label is at most {MAX_LABEL} characters", field="label")
    if attribute.description is not None and len(attribute.description) > MAX_DESCRIPTION:
        raise InvalidInput(
            "too_long", f"description is at most {MAX_DESCRIPTION} characters", field="description"
        )
    options = attribute.options
    if attribute.type is AttrType.LIST:
        if not 1 <= len(options) <= MAX_OPTIONS or len(set(options)) != len(options):
            raise InvalidInput(
                "invalid_field", f"a list takes 1-{MAX_OPTIONS} distinct options", field="options"
            )
        if any(not option or len(option) > MAX_LABEL for option in options):
            raise InvalidInput("invalid_field", "an option is 1-255 characters", field="options")
    elif options:
        raise InvalidInput("invalid_field", "only a list attribute has options", field="options")


_NUMBER_TEXT = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?")
_TRUE, _FALSE = frozenset({"true", "yes", "1"}), frozenset({"false", "no", "0"})


def read_cell(text: str, attribute: Attribute | None) -> Any:
    """A CSV cell's text as its attribute's type (a cell has no type of its own): a number, a
    boolean (true/false, yes/no, 1/0), a date (ISO-8601, or unix seconds as digits). Text that
    cannot be read so is returned as it is, for the type check to refuse; a key not yet
    defined stays text."""
    if attribute is None:
        return text
    cell = text.strip()
    match attribute.type:
        case AttrType.NUMBER | AttrType.DATE if _NUMBER_TEXT.fullmatch(cell):
            number = float(cell)
            whole = number.is_integer() and "." not in cell and "e" not in cell.lower()
            return int(cell) if whole else number
        case AttrType.BOOLEAN if cell.lower() in _TRUE | _FALSE:
            return cell.lower() in _TRUE
    return text


def read_cells(metadata: Mapping[str, str] | None, known: Mapping[str, Attribute]) -> Any:
    """Every metadata cell of a CSV row read by its attribute's type."""
    if not metadata:
        return metadata
    return {key: read_cell(text, known.get(key)) for key, text in metadata.items()}

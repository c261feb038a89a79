"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import JSON, DateTime, Dialect
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator

_encode = json.JSONEncoder().encode  # what json.dumps does with its defaults
_decode = json.JSONDecoder().decode  # what json.loads does with a str


class _JSON(JSON):
    """JSON whose prepared statements (db/prepared.py) write and read a document on SQLite in
    one call each, not through SQLAlchemy's three layers of functions; anything else (None,
    `JSON.NULL`, a number SQLite hands back) as SQLAlchemy does (tests/unit/test_types.py
    holds the two equal)."""

    def prepared_bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return None
        usual = self._cached_bind_processor(dialect)
        assert usual is not None

        def process(value: Any) -> Any:
            if value.__class__ is dict or value.__class__ is list:
                return _encode(value)
            return usual(value)

        return process

    def prepared_result_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return None
        usual = self._cached_result_processor(dialect, None)
        assert usual is not None

        def process(value: Any) -> Any:
            return _decode(value) if value.__class__ is str else usual(value)

        return process


JSONDocument = _JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes everywhere (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        value = _utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def prepared_bind_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """The prepared statements' (db/prepared.py) bind processing, where one is faster than
        `process_bind_param` followed by the dialect's own: on SQLite, `sqlite_text`."""
        return sqlite_text if dialect.name == "sqlite" else None

    def prepared_result_processor(self, dialect: Dialect) -> Callable[[Any], Any] | None:
        """The prepared statements' result processing, where one is faster than the dialect's
        own followed by `process_result_value`: on SQLite, `sqlite_datetime`."""
        return sqlite_datetime if dialect.name == "sqlite" else None

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]


def sqlite_text(value: datetime | None) -> str | None:
    """A UTC datetime as SQLite stores it: what `UTCDateTime.process_bind_param` and then
    SQLAlchemy's SQLite DATETIME storage format (`%04d-%02d-%02d %02d:%02d:%02d.%06d`) make,
    in one C call (tests/unit/test_types.py holds the two equal)."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = _utc(value)
    return value.isoformat(" ", "microseconds")[:-6]  # without its "+00:00"


def sqlite_datetime(value: str | None) -> datetime | None:
    """SQLite's stored text back as a UTC datetime: what SQLAlchemy's SQLite DATETIME reading
    and then `UTCDateTime.process_result_value` make, in one C call (tests/unit/test_types.py
    holds the two equal)."""
    if value is None:
        return None
    return datetime.fromisoformat(value).replace(tzinfo=UTC)


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)

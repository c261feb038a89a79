"""db/types.py: the prepared statements' faster bind processing is the column type's own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import JSON, null
from sqlalchemy.dialects import postgresql, sqlite

from hal.db.types import JSONDocument, UTCDateTime, sqlite_datetime, sqlite_text

SQLITE = sqlite.dialect()
ZONES = st.one_of(
    st.just(UTC),
    st.integers(min_value=-23 * 60, max_value=23 * 60).map(
        lambda minutes: timezone(timedelta(minutes=minutes))
    ),
)
# Aware datetimes whose UTC instant is a datetime too (not before year 1 or after 9999).
AWARE = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(2, 1, 1), max_value=datetime(9998, 12, 31)),
    ZONES,
)


@given(AWARE)
def test_sqlite_text_is_what_the_type_and_the_dialect_make(value: datetime):
    processed = UTCDateTime()._cached_bind_processor(SQLITE)  # as a compiled statement has it
    assert processed is not None
    assert sqlite_text(value) == processed(value)


def test_sqlite_text_refuses_a_naive_datetime_and_passes_none():
    with pytest.raises(ValueError, match="naive"):
        sqlite_text(datetime(2026, 1, 1))
    assert sqlite_text(None) is None


@given(AWARE, st.sampled_from([None, 0]))
def test_sqlite_datetime_is_what_the_dialect_and_the_type_make(value: datetime, micro):
    stored = sqlite_text(value if micro is None else value.replace(microsecond=micro))
    assert stored is not None
    # As SQLite may hold it: SQLAlchemy's format, or CURRENT_TIMESTAMP's (no fraction).
    texts = [stored, stored[:19]] if micro == 0 else [stored]
    processed = UTCDateTime()._cached_result_processor(SQLITE, None)
    assert processed is not None
    for text in texts:
        assert sqlite_datetime(text) == processed(text)
        assert sqlite_datetime(text).tzinfo is UTC  # type: ignore[union-attr]
    assert sqlite_datetime(None) is None


def test_the_faster_processing_is_sqlite_only():
    assert UTCDateTime().prepared_bind_processor(SQLITE) is sqlite_text
    assert UTCDateTime().prepared_bind_processor(postgresql.dialect()) is None
    assert UTCDateTime().prepared_result_processor(SQLITE) is sqlite_datetime
    assert UTCDateTime().prepared_result_processor(postgresql.dialect()) is None


# JSON documents as a column holds them: objects and arrays of JSON's values, and bare ones.
DOCUMENTS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(DOCUMENTS)
def test_sqlite_json_is_what_the_dialect_makes(value):
    usual_bind = JSONDocument._cached_bind_processor(SQLITE)
    usual_result = JSONDocument._cached_result_processor(SQLITE, None)
    bind = JSONDocument.prepared_bind_processor(SQLITE)
    result = JSONDocument.prepared_result_processor(SQLITE)
    assert bind and result and usual_bind and usual_result
    stored = bind(value)
    assert stored == usual_bind(value)
    assert result(stored) == usual_result(stored)


def test_sqlite_json_passes_what_is_not_a_document_to_the_dialect():
    bind = JSONDocument.prepared_bind_processor(SQLITE)
    result = JSONDocument.prepared_result_processor(SQLITE)
    assert bind is not None and result is not None
    assert bind(JSON.NULL) == bind(None) == "null"  # JSON's null
    assert bind(null()) is None  # SQL's NULL
    assert result(None) is None
    assert result(3) == 3  # a number SQLite hands back as one


def test_json_reads_as_usual_on_postgresql():
    assert JSONDocument.prepared_bind_processor(postgresql.dialect()) is None
    assert JSONDocument.prepared_result_processor(postgresql.dialect()) is None

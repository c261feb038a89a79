"""Held writes' literals (db/literals.py): each value written in exactly, or not at all."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest

from hal.db.literals import NotLiteral, literal, split, written


class Kind(StrEnum):
    SEEN = "contact.seen"


@pytest.mark.parametrize(
    ("value", "sql"),
    [
        (None, "NULL"),
        (True, "true"),
        (False, "false"),
        (0, "0"),
        (-9_223_372_036_854_775_808, "-9223372036854775808"),
        ("plain", "'plain'"),
        ("it's", "'it''s'"),
        ("''", "''''''"),
        ("back\\slash", "'back\\slash'"),
        ("Zoë 東京 🚀", "'Zoë 東京 🚀'"),
        (Kind.SEEN, "'contact.seen'"),
        (datetime(2026, 12, 6, 4, 5, 6, 7, tzinfo=UTC), "'2026-12-06T04:05:06.000007+00:00'"),
        (
            datetime(2026, 1, 1, tzinfo=timezone(timedelta(hours=-5))),
            "'2026-01-01T00:00:00-05:00'",
        ),
    ],
)
def test_a_value_is_written_as_its_literal(value, sql):
    assert literal(value) == sql


@pytest.mark.parametrize(
    "value",
    ["nul \x00 inside", "lone \ud800 surrogate", datetime(2026, 1, 1), 1.5, b"bytes", [1], {}],
)
def test_a_value_without_an_exact_literal_is_refused(value):
    with pytest.raises(NotLiteral):
        literal(value)


def test_the_sql_is_split_at_its_numbered_parameters():
    parts = split("UPDATE t SET a=$2::VARCHAR WHERE t.id = $1::BIGINT")
    assert parts == ["UPDATE t SET a=", 1, "::VARCHAR WHERE t.id = ", 0, "::BIGINT"]
    assert parts is not None
    assert written(parts, [7, "o'k"]) == "UPDATE t SET a='o''k'::VARCHAR WHERE t.id = 7::BIGINT"


def test_sql_quoting_a_string_of_its_own_is_not_split():
    assert split("UPDATE t SET a='$1' WHERE id = $1") is None

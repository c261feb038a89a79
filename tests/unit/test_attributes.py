"""Attribute types: what a first value makes of a key, what fits a type, what a write keeps."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.attributes import (
    CANONICAL_DATE,
    Attribute,
    AttrType,
    Model,
    conforms,
    fit,
    format_date,
    infer_type,
    majority_type,
    parse_date,
    type_write,
)
from hal.domain.errors import InvalidInput


@pytest.mark.parametrize(
    ("key", "value", "type_"),
    [
        ("plan", "pro", AttrType.STRING),
        ("seats", 12, AttrType.NUMBER),
        ("arr", 1.5, AttrType.NUMBER),
        ("beta", True, AttrType.BOOLEAN),  # a boolean is not a number
        ("trial_started_at", 1764900000, AttrType.DATE),
        ("trial_started_at", "2026-12-01T10:00:00Z", AttrType.DATE),
        ("trial_started_at", "2026-12-01", AttrType.DATE),
        ("trial_started_at", "soon", AttrType.STRING),  # not a date: its value's own type
        ("seen", "2026-12-01", AttrType.STRING),  # only a key ending in _at becomes a date
        ("tags", ["a", "b"], None),  # an array gives no type; a later single value does
        ("plan", None, None),
        ("tags", [], None),
    ],
)
def test_a_first_value_gives_a_key_its_type(key, value, type_):
    assert infer_type(key, value) == type_


@pytest.mark.parametrize(
    ("type_", "value", "fits"),
    [
        (AttrType.STRING, "5", True),
        (AttrType.STRING, 5, False),  # nothing is converted
        (AttrType.NUMBER, "12", False),
        (AttrType.NUMBER, 12, True),
        (AttrType.NUMBER, True, False),
        (AttrType.BOOLEAN, 1, False),
        (AttrType.DATE, "2026-12-01T10:00:00+02:00", True),
        (AttrType.DATE, 1764900000, True),
        (AttrType.DATE, "yesterday", False),
        (AttrType.STRING, ["a", "b"], True),
        (AttrType.STRING, ["a", 1], False),
    ],
)
def test_what_fits_a_type(type_, value, fits):
    assert fit(value, Attribute(Model.CONTACT, "k", type_))[0] is fits


def test_a_list_attribute_takes_its_options_only():
    plan = Attribute(Model.CONTACT, "plan", AttrType.LIST, options=("free", "pro"))
    assert fit("pro", plan) == (True, "pro")
    assert fit("Pro", plan)[0] is False
    assert fit("enterprise", plan)[0] is False


def test_dates_are_stored_in_one_form_in_utc():
    date = Attribute(Model.CONTACT, "renewed_at", AttrType.DATE)
    assert fit("2026-12-01T10:00:00+02:00", date) == (True, "2026-12-01T08:00:00.000000Z")
    assert fit(0, date) == (True, "1970-01-01T00:00:00.000000Z")
    assert fit("2026-12-01", date) == (True, "2026-12-01T00:00:00.000000Z")


@given(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)))
def test_the_stored_date_form_orders_as_time_does_and_reads_back(moment):
    stored = format_date(moment)
    assert CANONICAL_DATE.fullmatch(stored)
    assert parse_date(stored) == moment
    assert conforms(stored, AttrType.DATE)


@given(st.lists(st.datetimes(min_value=datetime(1970, 1, 1), timezones=st.just(UTC)), min_size=2))
def test_stored_dates_sort_as_text_in_time_order(moments):
    assert sorted(format_date(m) for m in moments) == [format_date(m) for m in sorted(moments)]


def test_a_write_keeps_what_fits_and_names_what_does_not():
    known = {
        "seats": Attribute(Model.CONTACT, "seats", AttrType.NUMBER),
        "old": Attribute(Model.CONTACT, "old", AttrType.STRING, archived=True),
    }
    typed = type_write(
        {"seats": "12", "old": "x", "plan": "pro", "gone": None, "renewed_at": 1764900000},
        known,
        model=Model.CONTACT,
        count=len(known),
        max_attributes=250,
    )
    assert typed.values == {
        "plan": "pro",
        "gone": None,
        "renewed_at": format_date(datetime.fromtimestamp(1764900000, UTC)),
    }
    assert typed.new == {"plan": AttrType.STRING, "renewed_at": AttrType.DATE}
    assert typed.problems == [("seats", "attribute_type"), ("old", "attribute_archived")]
    assert typed.warnings == ["attribute_type:seats", "attribute_archived:old"]
    with pytest.raises(InvalidInput) as refused:
        typed.refuse()
    assert (refused.value.code, refused.value.field) == ("attribute_type", "metadata.seats")


def test_a_write_past_the_attribute_limit_is_refused_for_the_new_keys_only():
    known = {"a": Attribute(Model.COMPANY, "a", AttrType.STRING)}
    typed = type_write(
        {"a": "x", "b": "y", "c": 1}, known, model=Model.COMPANY, count=1, max_attributes=2
    )
    assert typed.values == {"a": "x", "b": "y"}
    assert typed.problems == [("c", "too_many_attributes")]


def test_existing_data_is_typed_by_most_of_its_values():
    assert majority_type("seats", [1, 2, "3", None]) == AttrType.NUMBER
    assert majority_type("plan", ["a", 1]) == AttrType.STRING  # a tie: string first
    assert majority_type("x", [None]) is None


@pytest.mark.parametrize(
    ("type_", "text", "value"),
    [
        (AttrType.NUMBER, "7", 7),
        (AttrType.NUMBER, " 2.5 ", 2.5),
        (AttrType.NUMBER, "1e3", 1000.0),
        (AttrType.NUMBER, "many", "many"),  # left as text: the type check refuses it
        (AttrType.BOOLEAN, "Yes", True),
        (AttrType.BOOLEAN, "0", False),
        (AttrType.BOOLEAN, "maybe", "maybe"),
        (AttrType.DATE, "1764900000", 1764900000),
        (AttrType.DATE, "2026-12-01", "2026-12-01"),  # read as a date by the type check
        (AttrType.STRING, "007", "007"),
    ],
)
def test_a_csv_cell_is_read_by_its_attributes_type(type_, text, value):
    from hal.domain.attributes import read_cell

    assert read_cell(text, Attribute(Model.CONTACT, "k", type_)) == value
    assert read_cell(text, None) == text  # a key not yet defined stays text

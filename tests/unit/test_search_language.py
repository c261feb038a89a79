"""The search language as plain Python: what a query may say (and the path of what it says
wrong), and what it finds (the reference the SQL is held to)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from hal.domain.attributes import AttrType
from hal.domain.errors import InvalidInput
from hal.domain.search import (
    MAX_CONDITIONS,
    FieldSpec,
    Record,
    Sort,
    matches,
    parse_query,
    parse_sort,
)

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
CATALOG = {
    "name": FieldSpec(AttrType.STRING, "builtin", "name"),
    "created_at": FieldSpec(AttrType.DATE, "builtin", "created_at"),
    "verified": FieldSpec(AttrType.BOOLEAN, "builtin", "verified"),
    "metadata.plan": FieldSpec(AttrType.STRING, "metadata", "plan"),
    "metadata.seats": FieldSpec(AttrType.NUMBER, "metadata", "seats"),
    "metadata.tier": FieldSpec(AttrType.LIST, "metadata", "tier", options=("gold", "silver")),
    "company.stage": FieldSpec(AttrType.STRING, "builtin", "stage", relation="company"),
}


def query(body, *, events=True):
    return parse_query(body, CATALOG, now=NOW, events=events)


def refused_at(body) -> str:
    with pytest.raises(InvalidInput) as refused:
        query(body)
    assert refused.value.code == "invalid_query"
    return str(refused.value.field)


def find(body, **record) -> bool:
    return matches(query(body), Record(**record))


def test_a_bare_condition_and_nested_groups_are_queries():
    assert find({"field": "metadata.plan", "operator": "=", "value": "Pro"},
                values={"metadata.plan": "pro"})  # fmt: skip
    nested = {"operator": "AND", "value": [
        {"field": "metadata.seats", "operator": ">", "value": 10},
        {"operator": "OR", "value": [
            {"field": "verified", "operator": "=", "value": True},
            {"field": "name", "operator": "^", "value": "ann"}]}]}  # fmt: skip
    assert find(nested, values={"metadata.seats": 12, "verified": False, "name": "Anna"})
    assert not find(nested, values={"metadata.seats": 9, "verified": True})


@pytest.mark.parametrize(
    ("body", "path"),
    [
        ({"field": "metadata.nope", "operator": "=", "value": 1}, "query.field"),
        ({"field": "metadata.seats", "operator": "~", "value": "1"}, "query.operator"),
        ({"field": "metadata.seats", "operator": "=", "value": "12"}, "query.value"),
        ({"field": "metadata.seats", "operator": "=", "value": True}, "query.value"),
        ({"field": "metadata.tier", "operator": "=", "value": "bronze"}, "query.value"),
        ({"field": "created_at", "operator": ">", "value": "last week"}, "query.value"),
        ({"field": "name", "operator": "exists", "value": "x"}, "query.value"),
        ({"field": "name", "operator": "IN", "value": []}, "query.value"),
        ({"field": "name", "operator": "IN", "value": ["a", 2]}, "query.value[1]"),
        (
            {
                "operator": "AND",
                "value": [
                    {"field": "name", "operator": "=", "value": "a"},
                    {"field": "x", "operator": "=", "value": 1},
                ],
            },
            "query.value[1].field",
        ),
        ({"operator": "OR", "value": []}, "query.value"),
        ({"field": "event", "operator": ">", "value": 1}, "query.event"),
        ({"field": "event", "event": "signup", "operator": ">", "value": -1}, "query.value"),
        ({"field": "event", "event": "signup", "operator": "~", "value": 1}, "query.operator"),
        ({"field": "name", "operator": "=", "value": "a", "extra": 1}, "query.extra"),
        ("plan = pro", "query"),
    ],
)
def test_a_wrong_query_names_the_path_of_what_is_wrong(body, path):
    assert refused_at(body) == path


def test_queries_nest_three_deep_and_hold_twenty_conditions():
    leaf = {"field": "name", "operator": "exists"}
    deep = {"operator": "AND", "value": [{"operator": "OR", "value": [
        {"operator": "AND", "value": [leaf]}]}]}  # fmt: skip
    query(deep)
    assert refused_at({"operator": "AND", "value": [deep]}) == "query.value[0].value[0].value[0]"
    query({"operator": "OR", "value": [leaf] * MAX_CONDITIONS})
    assert refused_at({"operator": "OR", "value": [leaf] * (MAX_CONDITIONS + 1)}) == (
        f"query.value[{MAX_CONDITIONS}]"
    )


@pytest.mark.parametrize(
    ("op", "matches_missing"),
    [("=", False), ("!=", True), ("IN", False), ("NIN", True), ("~", False), ("!~", True),
     ("^", False), ("$", False), ("exists", False), ("!exists", True)],
)  # fmt: skip
def test_a_missing_value_matches_only_the_negations(op, matches_missing):
    value = None if op.endswith("exists") else (["x"] if op in ("IN", "NIN") else "x")
    body = {"field": "metadata.plan", "operator": op, "value": value}
    assert find(body, values={}) is matches_missing
    assert find(body, values={"metadata.plan": None}) is matches_missing


@pytest.mark.parametrize("op", ["=", "!=", "<", ">", "IN", "NIN"])
def test_a_value_not_of_its_type_matches_only_exists(op):
    value = [5] if op in ("IN", "NIN") else 5
    assert not find({"field": "metadata.seats", "operator": op, "value": value},
                    values={"metadata.seats": "five"})  # fmt: skip
    assert find({"field": "metadata.seats", "operator": "exists"}, values={"metadata.seats": "x"})


def test_strings_compare_after_case_folding():
    assert find({"field": "name", "operator": "=", "value": "STRASSE"}, values={"name": "straße"})
    assert find({"field": "name", "operator": "~", "value": "ÉL"}, values={"name": "Noël Élan"})
    assert find({"field": "name", "operator": "$", "value": "AN"}, values={"name": "Noël Élan"})


def test_dates_compare_as_times_and_may_be_relative_to_now():
    recent = {"field": "created_at", "operator": ">", "value": "-7d"}
    assert find(recent, values={"created_at": NOW - timedelta(days=6)})
    assert not find(recent, values={"created_at": NOW - timedelta(days=8)})
    unix = {"field": "created_at", "operator": "<", "value": int(NOW.timestamp())}
    assert find(unix, values={"created_at": NOW - timedelta(seconds=1)})


def test_a_company_condition_holds_when_any_linked_company_holds_it():
    trial = {"field": "company.stage", "operator": "=", "value": "trial"}
    not_trial = {"field": "company.stage", "operator": "!=", "value": "trial"}
    both = {"company": [{"stage": "Customer"}, {"stage": "Trial"}]}
    assert find(trial, values={}, related=both)
    assert find(not_trial, values={}, related=both)  # one of them is not in Trial
    assert not find(trial, values={}, related={"company": []})
    assert find(not_trial, values={}, related={"company": []})  # no company: missing


def test_an_event_condition_counts_events_since_a_time():
    events = [
        ("trial-started", NOW - timedelta(days=40)),
        ("trial-started", NOW - timedelta(days=2)),
    ]
    recent = {"field": "event", "event": "trial-started", "operator": ">=", "value": 1,
              "since": "-30d"}  # fmt: skip
    assert find(recent, values={}, events=events)
    assert not find({**recent, "value": 2}, values={}, events=events)
    never = {"field": "event", "event": "signed-up", "operator": "!exists"}
    assert find(never, values={}, events=events)
    zero = {"field": "event", "event": "signed-up", "operator": "=", "value": 0}
    assert find(zero, values={}, events=events)  # never tracked counts 0


def test_events_are_refused_where_records_have_none():
    with pytest.raises(InvalidInput):
        query({"field": "event", "event": "x", "operator": "exists"}, events=False)


def test_sort_takes_an_own_field_of_a_sortable_type():
    default = Sort("created_at", CATALOG["created_at"], True)
    assert parse_sort(None, CATALOG, default=default) == default
    seats = parse_sort({"field": "metadata.seats", "order": "asc"}, CATALOG, default=default)
    assert (seats.field, seats.descending) == ("metadata.seats", False)
    for bad in ({"field": "company.stage"}, {"field": "verified"}, {"field": "nope"}):
        with pytest.raises(InvalidInput) as refused:
            parse_sort(bad, CATALOG, default=default)
        assert refused.value.field == "sort.field"


def test_a_number_beyond_what_is_stored_is_refused_not_overflowed():
    assert refused_at({"field": "metadata.seats", "operator": ">", "value": 10**400}) == (
        "query.value"
    )

"""The `changed` part of a change: fields and metadata keys, with old and new values."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from hal.domain.changes import ChangeType, changed_values
from hal.domain.crm import instant_text


def test_only_fields_that_differ_are_named():
    before = {"name": "Ann", "email": "a@x.com"}
    after = {"name": "Anne", "email": "a@x.com"}
    assert changed_values(before, after, ["name", "email"]) == {
        "name": {"old": "Ann", "new": "Anne"}
    }


def test_metadata_is_compared_key_by_key():
    before = {"metadata": {"plan": "pro", "seats": 3, "gone": True}}
    after = {"metadata": {"plan": "enterprise", "seats": 3, "new": 1}}
    assert changed_values(before, after, ["metadata"]) == {
        "metadata.gone": {"old": True, "new": None},
        "metadata.new": {"old": None, "new": 1},
        "metadata.plan": {"old": "pro", "new": "enterprise"},
    }


def test_nothing_changed_is_empty():
    same = {"name": "A", "metadata": {"k": [1, 2]}}
    assert changed_values(same, dict(same), ["name", "metadata"]) == {}


@pytest.mark.parametrize(
    ("type_", "data", "person"),
    [
        ("contact.created", {"id": 7, "email": "a@b.c"}, 7),
        ("contact.updated", {"id": 7, "changed": {}}, 7),
        ("contact.merged", {"from": 7, "into": 8}, None),  # ids only
        ("contact.deleted", {"id": 7}, None),  # ids only
        ("contact.company_linked", {"contact_id": 7, "company_id": "acme"}, 7),
        ("message.created", {"conversation_id": 3, "contact_id": 7}, 7),
        ("message.created", {"conversation_id": 3, "contact_id": None}, None),
        ("event.tracked", {"contact_id": 7, "company_id": None}, 7),
        ("company.updated", {"id": "acme", "contact_id": 7}, None),  # a company names no one
        ("deal.updated", {"company_id": "acme"}, None),
    ],
)
def test_each_change_type_says_which_key_names_its_person(type_, data, person):
    assert ChangeType(type_).person(data) == person


def test_an_unknown_change_type_is_refused():
    with pytest.raises(ValueError):
        ChangeType("contact.renamed")


def test_instants_are_written_in_utc_ending_in_z():
    moment = datetime(2026, 12, 5, 12, 35, 56, 85968, tzinfo=UTC)
    assert instant_text(moment) == "2026-12-05T12:35:56.085968Z"
    paris = moment.astimezone(timezone(timedelta(hours=1)))
    assert instant_text(paris) == "2026-12-05T12:35:56.085968Z"
    assert instant_text(moment.replace(microsecond=0)) == "2026-12-05T12:35:56Z"

"""The `changed` part of a change: fields and metadata keys, with old and new values."""

from __future__ import annotations

from hal.domain.changes import changed_values


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

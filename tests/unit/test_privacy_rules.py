"""Privacy rules without a database: suppression hashes, how a merge combines contacts, and
what an audit log filter asks for."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.errors import Conflict, InvalidInput
from hal.domain.privacy import (
    AuditFilter,
    MergeSide,
    audit_filter,
    check_retention_days,
    erased_values,
    names_person,
    new_suppression_key,
    plan_merge,
    suppression_hash,
    suppression_hashes,
)


def side(id: int, **fields) -> MergeSide:
    values = {
        "user_id": None,
        "email": None,
        "email_normalized": None,
        "name": None,
        "metadata": {},
        "verified": False,
        "email_verified": False,
        **fields,
    }
    return MergeSide(id=id, **values)


@given(st.text(min_size=2, max_size=50).filter(lambda v: not set(v) <= set("0123456789abcdef")))
def test_a_suppression_hash_depends_on_the_key_the_kind_and_the_value(value):
    key, other_key = new_suppression_key(), new_suppression_key()
    hashed = suppression_hash(key, "email", value)
    assert len(hashed) == 64 and value not in hashed
    assert hashed == suppression_hash(key, "email", value)
    assert hashed != suppression_hash(other_key, "email", value)
    assert hashed != suppression_hash(key, "user_id", value)


def test_suppression_hashes_leave_a_missing_key_out():
    key = new_suppression_key()
    assert suppression_hashes(key, user_id=None, email_key="a@b.c")[0] is None
    assert suppression_hashes(key, user_id="u1", email_key=None)[1] is None


def test_into_wins_and_its_blanks_are_filled_from_the_other():
    plan = plan_merge(
        side(1, email="Lead@X.com", email_normalized="lead@x.com", name="Lead",
             metadata={"plan": "free", "source": "ads"}),
        side(2, user_id="u2", metadata={"plan": "pro"}),
    )  # fmt: skip
    assert (plan.user_id, plan.email, plan.name) == ("u2", "Lead@X.com", "Lead")
    assert plan.metadata == {"plan": "pro", "source": "ads"}
    assert plan.email_alias is None
    assert set(plan.changed) == {"email", "name", "metadata"}


def test_an_email_into_cannot_take_stays_an_alias():
    plan = plan_merge(
        side(1, email="a@x.com", email_normalized="a@x.com"),
        side(2, email="b@x.com", email_normalized="b@x.com"),
    )
    assert plan.email_normalized == "b@x.com"
    assert plan.email_alias == "a@x.com"


def test_the_user_id_of_from_moves_when_into_has_none():
    plan = plan_merge(side(1, user_id="u1", verified=True), side(2, email="b@x.com"))
    assert plan.user_id == "u1" and plan.verified


def test_two_user_ids_or_one_contact_never_merge():
    with pytest.raises(Conflict) as refused:
        plan_merge(side(1, user_id="u1"), side(2, user_id="u2"))
    assert refused.value.code == "conflicting_user_ids"
    with pytest.raises(Conflict):
        plan_merge(side(1), side(1))


@pytest.mark.parametrize(
    ("source", "into"),
    [
        ({"user_id": "eve", "verified": True}, {"email_normalized": "v@x.io", "verified": True}),
        ({"email_normalized": "v@x.io", "verified": True}, {"user_id": "eve", "verified": True}),
        ({"user_id": "u", "email_verified": True}, {"user_id": "u", "verified": True}),
    ],
)
def test_two_contacts_each_with_its_own_proof_merge_only_when_confirmed(source, into):
    with pytest.raises(Conflict) as refused:
        plan_merge(side(1, **source), side(2, **into))
    assert refused.value.code == "verified_pair"
    assert refused.value.field == "confirm_verified_pair"
    assert plan_merge(side(1, **source), side(2, **into), confirm_verified_pair=True).verified


@pytest.mark.parametrize("verified", [(True, False), (False, True), (False, False)])
def test_a_merge_with_at_most_one_proof_needs_no_confirmation(verified):
    plan_merge(side(1, verified=verified[0]), side(2, verified=verified[1]))


def test_an_erased_persons_audit_changes_keep_field_names_only():
    changes = {"name": {"old": "Olga", "new": "Olga R"}, "metadata.salary": {"new": "99k"}}
    assert erased_values(changes) == {"name": None, "metadata.salary": None}


@pytest.mark.parametrize("days", [0, -1, 36_501])
def test_a_retention_out_of_range_names_the_field(days):
    with pytest.raises(InvalidInput) as refused:
        check_retention_days(days, field="event_retention_days")
    assert refused.value.field == "event_retention_days"
    assert check_retention_days(None, field="x") is None
    assert check_retention_days(30, field="x") == 30


def test_an_audit_filter_reads_actors_and_a_date_as_its_whole_day():
    assert audit_filter(actor="token:3") == AuditFilter(actor_kind="token", actor_id=3)
    assert audit_filter(actor="agent") == AuditFilter(actor_kind="agent")
    assert audit_filter(actor=" cli ", action="agent.created") == AuditFilter(
        actor_kind="cli", action="agent.created"
    )
    day = audit_filter(since="2026-12-05", until="2026-12-05")
    assert (day.since, day.until) == (
        datetime(2026, 12, 5, tzinfo=UTC),
        datetime(2026, 12, 6, tzinfo=UTC),
    )
    moment = audit_filter(since="2026-12-05T10:00:00+02:00", until="2026-12-05T09:00:00")
    assert (moment.since, moment.until) == (
        datetime(2026, 12, 5, 8, tzinfo=UTC),
        datetime(2026, 12, 5, 9, tzinfo=UTC),
    )
    assert audit_filter() == AuditFilter()


@pytest.mark.parametrize(
    ("given", "field"),
    [
        ({"actor": "cli:1"}, "actor"),
        ({"actor": "agent:"}, "actor"),
        ({"actor": "token:-1"}, "actor"),
        ({"since": "0001-01-01T00:00:00+01:00"}, "since"),
        ({"until": "9999-12-31"}, "until"),
        ({"since": "2026-12-05T10:00:00Z", "until": "2026-12-05T10:00:00Z"}, "until"),
    ],
)
def test_a_bad_audit_filter_names_its_field(given, field):
    with pytest.raises(InvalidInput) as refused:
        audit_filter(**given)
    assert refused.value.field == field


# --- which kept rows name a person (an import's failed rows, erased with the person) ---------


def test_a_row_names_the_person_by_a_user_id_or_an_email_cell():
    keys = {"user_ids": {"u-42"}, "emails": {"dana@initech.com"}}
    assert names_person({"User ID": "u-42", "Email": ""}, **keys)
    assert names_person({"User ID": " u-42 ", "Plan": "pro"}, **keys)
    assert names_person({"Email Address": "  Dana@INITECH.com\n"}, **keys)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in "dana") + "@initech.com"
    assert names_person({"Email": full_width}, **keys)  # NFKC folds it, as email keys are made
    assert names_person({"Notes": "x", "Owner": "dana@initech.com"}, **keys)  # any column


def test_a_row_that_only_mentions_or_resembles_the_person_does_not_name_them():
    keys = {"user_ids": {"u-42"}, "emails": {"dana@initech.com"}}
    assert not names_person({"User ID": "U-42"}, **keys)  # user ids are exact
    assert not names_person({"User ID": "u-420", "Email": "dana@initech.co"}, **keys)
    assert not names_person({"Notes": "write to dana@initech.com"}, **keys)
    assert not names_person({"Seats": 42, "Tags": None}, **keys)
    assert not names_person(None, **keys)
    assert not names_person({"Email": "dana@initech.com"}, user_ids=set(), emails=set())

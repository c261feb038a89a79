"""The pure rules of a CSV import (README "Batch writes and imports"): the header, a row's
fields, what an empty cell means, the encoding; and how a trusted team caller matches."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.csv_import import (
    ImportKind,
    check_utf8,
    column_of,
    company_fields,
    contact_fields,
    read_header,
    row_values,
)
from hal.domain.errors import Forbidden, InvalidInput
from hal.domain.matching import ContactRef, plan_identify
from hal.domain.verification import UNVERIFIED, VerificationMode

CONTACTS, COMPANIES = ImportKind.CONTACTS, ImportKind.COMPANIES


def refused(call, *args, **kwargs) -> tuple[str, str | None]:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kwargs)
    return caught.value.code, caught.value.field


def test_a_header_names_known_columns_and_metadata_keys():
    header = read_header(CONTACTS, [" user_id", "email ", "metadata.plan"])
    assert header.columns == ("user_id", "email", "metadata.plan")
    assert read_header(COMPANIES, ["id", "stage"]).columns == ("id", "stage")


@pytest.mark.parametrize(
    ("kind", "names", "expected"),
    [
        (CONTACTS, None, ("missing_header", "header")),
        (CONTACTS, ["", " "], ("missing_header", "header")),
        (CONTACTS, ["name", "company_id"], ("missing_column", "user_id")),
        (COMPANIES, ["name"], ("missing_column", "id")),
        (COMPANIES, ["id", "user_id"], ("unknown_column", "user_id")),
        (CONTACTS, ["email", "email"], ("duplicate_column", "email")),
        (CONTACTS, ["email", "metadata."], ("invalid_column", "metadata.")),
        (CONTACTS, ["email", "metadata." + "k" * 65], ("invalid_column", "metadata." + "k" * 65)),
    ],
)
def test_a_bad_header_is_refused_naming_the_column(kind, names, expected):
    assert refused(read_header, kind, names) == expected


def test_a_row_must_have_as_many_fields_as_the_header():
    header = read_header(CONTACTS, ["user_id", "name"])
    assert row_values(header, ["u1", "Ann"]) == {"user_id": "u1", "name": "Ann"}
    assert refused(row_values, header, ["u1", "Ann", "x"]) == ("wrong_field_count", "row")
    assert refused(row_values, header, ["u1"]) == ("wrong_field_count", "row")
    assert refused(row_values, header, ["u1", "A\x00nn"]) == ("invalid_string", "name")


def test_empty_cells_are_not_given():
    fields = contact_fields(
        {"user_id": "u1", "email": "", "name": "", "company_id": "", "metadata.plan": ""}
    )
    assert fields == {"user_id": "u1"}


def test_a_contact_row_becomes_identify_fields():
    fields = contact_fields({
        "user_id": "u1", "email": "a@x.com", "name": "Ann", "company_id": "acme",
        "company_name": "Acme", "stage": "Trial", "metadata.plan": "pro", "metadata.seats": "5",
    })  # fmt: skip
    assert fields == {
        "user_id": "u1",
        "email": "a@x.com",
        "name": "Ann",
        "company": {"id": "acme", "name": "Acme", "stage": "Trial"},
        "metadata": {"plan": "pro", "seats": "5"},
    }


def test_a_contact_row_needs_a_key_and_company_facts_need_a_company_id():
    assert refused(contact_fields, {"user_id": "", "email": "", "name": "Ann"}) == (
        "missing_identity", "user_id"
    )  # fmt: skip
    assert refused(contact_fields, {"user_id": "u1", "company_name": "Acme"}) == (
        "missing_company_id", "company_name"
    )  # fmt: skip
    assert refused(contact_fields, {"user_id": "u1", "stage": "Trial"})[1] == "stage"


def test_a_company_row_becomes_a_company_write():
    assert company_fields({"id": "acme", "name": "", "metadata.tier": "gold"}) == {
        "id": "acme",
        "metadata": {"tier": "gold"},
    }
    assert refused(company_fields, {"id": "", "name": "Acme"}) == ("missing_company_id", "id")


@pytest.mark.parametrize(
    ("kind", "path", "column"),
    [
        (CONTACTS, "company.id", "company_id"),
        (CONTACTS, ("company", "name"), "company_name"),
        (CONTACTS, "company.stage", "stage"),
        (CONTACTS, ("metadata", "plan"), "metadata.plan"),
        (CONTACTS, "email", "email"),
        (COMPANIES, "company.stage", "stage"),
        (COMPANIES, "metadata", "metadata"),
        (CONTACTS, None, None),
    ],
)
def test_an_error_names_the_column_it_came_from(kind, path, column):
    assert column_of(kind, path) == column


def test_utf8_with_or_without_a_byte_order_mark_is_accepted():
    check_utf8([b"\xef\xbb\xbfuser_id\n", "u1,Zo\u00eb\n".encode()])


def test_a_byte_that_is_not_utf8_is_refused_with_its_line():
    code, field = refused(check_utf8, [b"user_id\nu1\n", b"u2\nRen\xe9e\n"])
    assert (code, field) == ("invalid_encoding", "file")
    with pytest.raises(InvalidInput, match="line 4"):
        check_utf8([b"user_id\nu1\n", b"u2\nRen\xe9e\n"])


def test_a_character_split_across_blocks_is_fine_but_a_cut_one_is_not():
    encoded = "\u00e9".encode()
    check_utf8([b"a" + encoded[:1], encoded[1:] + b"\n"])
    assert refused(check_utf8, [b"a" + encoded[:1]]) == ("invalid_encoding", "file")


@given(st.dictionaries(st.sampled_from(["user_id", "email", "name", "metadata.a"]), st.text()))
def test_a_contact_row_never_carries_an_empty_value(values):
    try:
        fields = contact_fields(values)
    except InvalidInput:
        assert not values.get("user_id") and not values.get("email")
        return
    assert all(value != "" for value in fields.values())
    assert all(value != "" for value in fields.get("metadata", {}).values())


VERIFIED = ContactRef(id=3, user_id="u3", email="c@x.com", verified=True)
LEAD = ContactRef(id=1, user_id=None, email="a@x.com", verified=False)


def trusted_plan(**kwargs):
    kwargs.setdefault("by_user_id", None)
    kwargs.setdefault("by_email", None)
    return plan_identify(mode=VerificationMode.ENABLED, proof=UNVERIFIED, **kwargs)


def test_a_trusted_caller_reaches_a_verified_contact_without_verifying_anything():
    with pytest.raises(Forbidden):
        trusted_plan(user_id="u3", email=None, by_user_id=VERIFIED)
    plan = trusted_plan(user_id="u3", email=None, by_user_id=VERIFIED, trusted_caller=True)
    assert plan.target == VERIFIED
    assert not plan.mark_verified


def test_a_trusted_caller_claims_a_lead_and_its_new_email_is_not_verified():
    plan = trusted_plan(user_id="u9", email="a@x.com", by_email=LEAD, trusted_caller=True)
    assert plan.target == LEAD and plan.claim_user_id
    merged = trusted_plan(
        user_id="u3", email="a@x.com", by_user_id=VERIFIED, by_email=LEAD, trusted_caller=True
    )
    assert merged.merge_lead == LEAD and merged.set_email
    assert merged.email_verified is False

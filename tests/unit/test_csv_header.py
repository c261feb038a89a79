"""Which field each column of an import fills (README "Batch writes and imports"): names
matched without case or separators, CRMs' usual names, the caller's mapping, unknown columns
kept as metadata, and the faults that refuse a header."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.csv_header import (
    ALIASES,
    COLUMNS,
    ImportKind,
    metadata_key,
    name_key,
    parse_mapping,
    read_header,
)
from hal.domain.errors import InvalidInput

CONTACTS, COMPANIES = ImportKind.CONTACTS, ImportKind.COMPANIES


def fields(kind: ImportKind, names: list[str], **options) -> dict[str, str | None]:
    header = read_header(kind, names, **options)
    return dict(zip(header.columns, header.fields, strict=True))


def refused(kind: ImportKind, names: list[str], **options) -> tuple[str, str | None, str]:
    with pytest.raises(InvalidInput) as caught:
        read_header(kind, names, **options)
    return caught.value.code, caught.value.field, caught.value.message


def test_names_match_without_case_space_or_separators():
    assert fields(CONTACTS, ["User ID", " EMAIL ", "company-id", "Company_Name", "STAGE"]) == {
        "User ID": "user_id", "EMAIL": "email", "company-id": "company_id",
        "Company_Name": "company_name", "STAGE": "stage",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("crm", "names"),
    [
        ("HubSpot", ["Email", "Full Name", "Associated Company ID", "Associated Company",
                     "Lifecycle Stage"]),
        ("Intercom", ["User ID", "Email", "Name", "Company ID", "Company name"]),
        ("Salesforce", ["Email", "Full Name", "Account ID", "Account Name"]),
        ("a CRM", ["External ID", "Email Address", "Contact Name", "Company ID", "Company",
                   "Company Stage"]),
    ],
)  # fmt: skip
def test_what_crm_exports_call_hals_contact_fields_is_understood(crm, names):
    header = read_header(CONTACTS, names)
    assert None not in header.fields
    assert set(header.fields) <= set(COLUMNS[CONTACTS])


def test_companies_files_have_their_own_names():
    assert fields(COMPANIES, ["Company ID", "Company Name", "Lifecycle Stage"]) == {
        "Company ID": "id", "Company Name": "name", "Lifecycle Stage": "stage"
    }  # fmt: skip
    assert fields(COMPANIES, ["Account ID", "Account Name"]) == {
        "Account ID": "id", "Account Name": "name"
    }  # fmt: skip


def test_a_crms_own_record_id_is_not_taken_for_a_user_id():
    code, field, _ = refused(CONTACTS, ["Record ID", "Email"])
    assert (code, field) == ("unknown_column", "Record ID")


def test_metadata_columns_keep_their_key_as_written():
    assert fields(CONTACTS, ["email", "Metadata.Plan", "metadata. seats "]) == {
        "email": "email", "Metadata.Plan": "metadata.Plan", "metadata. seats": "metadata.seats"
    }  # fmt: skip


def test_an_unknown_column_is_refused_naming_it_and_the_ways_out():
    code, field, message = refused(CONTACTS, ["email", "Phone Number"])
    assert (code, field) == ("unknown_column", "Phone Number")
    assert "COLUMN=FIELD" in message and "metadata" in message


def test_unknown_columns_may_be_kept_as_metadata_under_a_key_made_from_their_name():
    assert fields(CONTACTS, ["email", "Phone Number", "Lead Source (Original)", "Straße"],
                  keep_unknown=True) == {
        "email": "email", "Phone Number": "metadata.phone_number",
        "Lead Source (Original)": "metadata.lead_source_original", "Straße": "metadata.straße",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("Phone Number", "phone_number"),
        ("  Last-Seen (UTC) ", "last_seen_utc"),
        ("# of seats", "of_seats"),
        ("Größe", "größe"),
        ("NPS score 2024", "nps_score_2024"),
        ("___", ""),
    ],
)
def test_the_metadata_key_of_an_unknown_column(name, key):
    assert metadata_key(name) == key


def test_a_column_whose_name_makes_no_key_must_be_mapped():
    code, field, _ = refused(CONTACTS, ["email", "???"], keep_unknown=True)
    assert (code, field) == ("invalid_column", "???")
    too_long = "x" * 65
    assert refused(CONTACTS, ["email", too_long], keep_unknown=True)[:2] == (
        "invalid_column", too_long
    )  # fmt: skip


def test_a_mapping_names_columns_and_the_fields_they_fill():
    mapping = parse_mapping(["Customer No=user_id,Plan=metadata.plan", "Notes="])
    assert mapping == {"Customer No": "user_id", "Plan": "metadata.plan", "Notes": ""}
    assert fields(CONTACTS, ["customer no", "Email Address", "PLAN", "Notes"],
                  mapping=mapping) == {
        "customer no": "user_id", "Email Address": "email", "PLAN": "metadata.plan",
        "Notes": None,
    }  # fmt: skip


def test_a_mapping_comes_before_the_usual_names():
    mapping = parse_mapping(["Email=metadata.contact_email,Login Email=email"])
    assert fields(CONTACTS, ["Email", "Login Email"], mapping=mapping) == {
        "Email": "metadata.contact_email", "Login Email": "email"
    }  # fmt: skip


def test_a_mapped_field_is_matched_like_a_column_name():
    mapping = parse_mapping(["Customer No=User ID"])
    assert fields(CONTACTS, ["Customer No"], mapping=mapping) == {"Customer No": "user_id"}


def test_a_column_name_in_a_mapping_may_hold_commas_and_equals_signs():
    assert parse_mapping(["Revenue, USD=metadata.revenue,a=b=metadata.ab,Plan=metadata.plan"]) == {
        "Revenue, USD": "metadata.revenue", "a=b": "metadata.ab", "Plan": "metadata.plan"
    }  # fmt: skip


@pytest.mark.parametrize(
    "entries", [["User ID"], ["=user_id"], ["User ID=user_id,Plan"], ["a=email", "A=user_id"]]
)
def test_a_malformed_mapping_is_refused(entries):
    with pytest.raises(InvalidInput) as caught:
        parse_mapping(entries)
    assert (caught.value.code, caught.value.field) == ("invalid_mapping", "map")


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"Plan": "plan"}, "not a contacts field"),
        ({"Plan": "metadata."}, "1-64 characters"),
        ({"Missing": "name"}, "no column 'Missing'"),
    ],
)
def test_a_mapping_to_no_field_or_from_no_column_is_refused(mapping, message):
    code, field, said = refused(CONTACTS, ["email", "Plan"], mapping=mapping)
    assert (code, field) == ("invalid_mapping", "map")
    assert message in said


def test_two_columns_filling_one_field_are_refused_naming_both():
    code, field, message = refused(CONTACTS, ["Email", "Email Address", "Name"])
    assert (code, field) == ("ambiguous_columns", "Email Address")
    assert "'Email'" in message and "'Email Address'" in message
    kept = refused(CONTACTS, ["email", "Plan", "metadata.plan"], keep_unknown=True)
    assert kept[:2] == ("ambiguous_columns", "metadata.plan")
    skipped = fields(CONTACTS, ["Email", "Email Address"], mapping={"Email": ""})
    assert skipped == {"Email": None, "Email Address": "email"}


def test_a_header_still_needs_a_key_column_and_each_name_once():
    assert refused(CONTACTS, ["Full Name", "Company ID"])[:2] == ("missing_column", "user_id")
    assert refused(CONTACTS, ["email", "Full Name"], mapping={"email": ""})[:2] == (
        "missing_column", "user_id"
    )  # fmt: skip
    assert refused(CONTACTS, ["Email", "Email"])[:2] == ("duplicate_column", "Email")


def test_every_alias_is_a_matched_name():
    for kind, aliases in ALIASES.items():
        for field, names in aliases.items():
            assert field in COLUMNS[kind]
            assert all(name == name_key(name) for name in names)


def _spellings(field: str) -> st.SearchStrategy[str]:
    """A field's name as someone might write it: any case, `_`, `-` or spaces between words."""
    words = field.split("_")

    def spelled(parts: tuple[list[str], str, str]) -> str:
        separators, case, pad = parts
        joined = words[0] + "".join(sep + word for sep, word in zip(separators, words[1:],
                                                                    strict=True))  # fmt: skip
        return pad + str(getattr(joined, case)()) + pad

    separators = st.lists(st.sampled_from(["_", "-", " ", "  "]), min_size=len(words) - 1,
                          max_size=len(words) - 1)  # fmt: skip
    cases = st.sampled_from(["lower", "upper", "title", "capitalize", "swapcase"])
    return st.tuples(separators, cases, st.sampled_from(["", " ", "\t"])).map(spelled)


@given(st.permutations(COLUMNS[CONTACTS]).flatmap(
    lambda order: st.tuples(*(_spellings(f) for f in order)).map(lambda names: (order, names))
))  # fmt: skip
def test_any_spelling_of_the_field_names_fills_those_fields(case):
    order, names = case
    header = read_header(CONTACTS, list(names))
    assert header.fields == tuple(order)


@given(
    st.lists(st.text(min_size=1, max_size=20), min_size=1, max_size=8),
    st.booleans(),
)
def test_a_read_header_fills_each_field_once_or_is_refused(names, keep_unknown):
    try:
        header = read_header(CONTACTS, names, keep_unknown=keep_unknown)
    except InvalidInput:
        return
    filled = [field for field in header.fields if field is not None]
    assert len(filled) == len(set(filled))
    assert {"user_id", "email"} & set(filled)
    for field in filled:
        assert field in COLUMNS[CONTACTS] or field.startswith("metadata.")

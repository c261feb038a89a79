"""Input checks and the metadata merge rule."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.errors import InvalidInput
from hal.domain.limits import Limits
from hal.domain.validation import check_identifier, check_metadata, merge_metadata, parse_email

LIMITS = Limits()


@pytest.mark.parametrize(
    "value", ["null", "Undefined", " none ", "0", "-1", "anonymous", "guest", " "]
)
def test_placeholders_are_not_ids(value):
    with pytest.raises(InvalidInput):
        check_identifier(value, field="user_id", limits=LIMITS)


@pytest.mark.parametrize("value", ["u_1", "00", "guest-42", "1"])
def test_real_ids_pass(value):
    assert check_identifier(value, field="user_id", limits=LIMITS) == value


def test_emails_are_trimmed_and_matched_case_insensitively():
    email = parse_email("  Alice@Example.COM ", limits=LIMITS)
    assert (email.display, email.normalized) == (
        "Alice@Example.COM",
        "alice@example.com",
    )


def test_metadata_limits_name_the_key():
    with pytest.raises(InvalidInput) as refused:
        check_metadata({"ok": 1, "bad": {"x": 1}}, field="metadata", limits=LIMITS)
    assert refused.value.field == "metadata.bad"
    with pytest.raises(InvalidInput):
        check_metadata({"n": float("nan")}, field="metadata", limits=LIMITS)


json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-100, 100), st.text(max_size=5))
metadata = st.dictionaries(st.text(min_size=1, max_size=4), json_scalars, max_size=8)


@given(metadata, metadata)
def test_merge_sets_patched_keys_deletes_nulls_and_keeps_the_rest(current, patch):
    merged = merge_metadata(current, patch)
    for key, value in patch.items():
        if value is None:
            assert key not in merged
        else:
            assert merged[key] == value
    for key, value in current.items():
        if key not in patch:
            assert merged[key] == value
    assert set(merged) <= set(current) | set(patch)

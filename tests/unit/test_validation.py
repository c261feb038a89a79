"""Input checks and the metadata merge rule."""

from __future__ import annotations

import itertools
import unicodedata

import pytest
from email_validator import EmailNotValidError, validate_email
from hypothesis import given
from hypothesis import strategies as st

from hal.domain.errors import InvalidInput
from hal.domain.limits import Limits
from hal.domain.validation import (
    _PLAIN_EMAIL,
    DEFAULT_IGNORABLE,
    _plain_email,
    check_identifier,
    check_metadata,
    check_visible,
    merge_metadata,
    parse_email,
)

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


# Invisible characters (Unicode's Default_Ignorable_Code_Point) in ids and emails.

INVISIBLE = st.sampled_from(DEFAULT_IGNORABLE).flatmap(
    lambda span: st.integers(span[0], span[1]).map(chr)
)
VISIBLE_ID = st.text(
    st.characters(codec="utf-8", categories=("L", "N", "P", "S")), min_size=1, max_size=40
).filter(lambda text: invisible_in(text) is None)


def invisible_in(value):
    return next(
        (ch for ch in value if any(low <= ord(ch) <= high for low, high in DEFAULT_IGNORABLE)),
        None,
    )


def test_the_invisible_table_is_unicodes_default_ignorable_set():
    assert list(DEFAULT_IGNORABLE) == sorted(DEFAULT_IGNORABLE)
    assert all(low <= high for low, high in DEFAULT_IGNORABLE)
    assert all(a[1] < b[0] for a, b in itertools.pairwise(DEFAULT_IGNORABLE))
    # DerivedCoreProperties.txt: "# Total code points: 4174".
    assert sum(high - low + 1 for low, high in DEFAULT_IGNORABLE) == 4174
    # Every assigned one is a format character, a mark or an invisible filler letter.
    for low, high in DEFAULT_IGNORABLE:
        for code in range(low, high + 1):
            assert unicodedata.category(chr(code)) in {"Cf", "Mn", "Lo", "Cn"}


@pytest.mark.parametrize(
    "code",
    [0x200B, 0x2060, 0xFEFF, 0x180E, 0x034F, 0x00AD, 0x200D, 0x202E, 0xFE00, 0xFE0F,
     0xE0100, 0xE01EF, 0xE0041, 0x3164],
)  # fmt: skip
def test_an_id_ending_in_an_invisible_character_is_refused_naming_the_field(code):
    with pytest.raises(InvalidInput) as refused:
        check_identifier("acme" + chr(code), field="company.id", limits=LIMITS)
    assert (refused.value.code, refused.value.field) == ("invisible_character", "company.id")
    assert f"U+{code:04X}" in refused.value.message


@pytest.mark.parametrize("code", [0x00AC, 0x00AE, 0x0350, 0x200A, 0x2010, 0xFE10, 0xFEFE])
def test_the_neighbours_of_invisible_characters_are_not_refused(code):
    assert check_visible("a" + chr(code), field="user_id") == "a" + chr(code)


@given(VISIBLE_ID, INVISIBLE, st.integers(0, 40))
def test_an_invisible_character_anywhere_in_an_id_is_refused(visible, invisible, at):
    value = visible[:at] + invisible + visible[at:]
    with pytest.raises(InvalidInput) as refused:
        check_visible(value, field="visitor_id")
    assert refused.value.field == "visitor_id"


@given(VISIBLE_ID)
def test_text_without_invisible_characters_is_visible(value):
    assert check_visible(value, field="user_id") == value


@pytest.mark.parametrize("code", [0x034F, 0xFE0F, 0xE0100, 0x200B, 0x2060, 0xFEFF])
@pytest.mark.parametrize("template", ["alice{}@acme.com", "alice@ac{}me.com", "alice@acme.com{}"])
def test_an_email_holding_an_invisible_character_is_refused_naming_the_field(code, template):
    # U+034F and the variation selectors pass email syntax checks: "alice" + U+034F would
    # otherwise be a second key beside "alice@acme.com".
    with pytest.raises(InvalidInput) as refused:
        parse_email(template.format(chr(code)), field="company.email", limits=LIMITS)
    assert (refused.value.code, refused.value.field) == ("invisible_character", "company.email")


# A plain address is not asked of email_validator (hal.domain.validation._plain_email): its
# answer must be what email_validator would have said.

_ATOM = st.text("abcXYZ019_+-", min_size=1, max_size=12)
_LABEL = st.from_regex(r"[A-Za-z0-9]([A-Za-z0-9-]{0,8}[A-Za-z0-9])?", fullmatch=True)
PLAINISH = st.builds(
    lambda local, labels, tld: ".".join(local) + "@" + ".".join([*labels, tld]),
    st.lists(_ATOM, min_size=1, max_size=3),
    st.lists(_LABEL, min_size=1, max_size=3),
    st.sampled_from(["com", "ORG", "io", "test", "local", "localhost", "co", "xn", "a1"]),
) | st.from_regex(_PLAIN_EMAIL, fullmatch=True)


@given(PLAINISH | st.text("ab.@-_+1é", max_size=20))
def test_a_plain_address_is_read_as_email_validator_reads_it(address):
    plain = _plain_email(address)
    try:
        checked = validate_email(address, check_deliverability=False)
    except EmailNotValidError:
        assert plain is None
        return
    if plain is not None:
        assert plain == (checked.local_part, checked.ascii_domain)


def test_most_addresses_are_plain():
    assert _plain_email("Ann.Lee+crm@Example.COM") == ("Ann.Lee+crm", "example.com")
    for address in ["a..b@x.com", "ann@localhost", "ann@x.test", "ann@ab--c.com", "zoë@x.com",
                    "ann@x.c0m", '"ann"@x.com']:  # fmt: skip
        assert _plain_email(address) is None, address

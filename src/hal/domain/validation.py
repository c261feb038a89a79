"""Checks of client-supplied values: ids, placeholders, invisible characters, emails, metadata
shapes."""

from __future__ import annotations

import functools
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email

from hal.domain.errors import Forbidden, InvalidInput
from hal.domain.limits import Limits

Metadata = dict[str, Any]


@dataclass(frozen=True)
class Email:
    """An email trimmed for display, and its matching key."""

    display: str
    normalized: str


# Unicode's Default_Ignorable_Code_Point property: every code point a renderer may show as
# nothing (format characters, variation selectors, fillers, tags and the ranges reserved for
# more of them). Copied from DerivedCoreProperties.txt of Unicode 15.1 (unchanged in 16.0;
# "# Total code points: 4174"): https://www.unicode.org/Public/UCD/latest/ucd/
DEFAULT_IGNORABLE: tuple[tuple[int, int], ...] = (
    (0x00AD, 0x00AD),  # SOFT HYPHEN
    (0x034F, 0x034F),  # COMBINING GRAPHEME JOINER
    (0x061C, 0x061C),  # ARABIC LETTER MARK
    (0x115F, 0x1160),  # HANGUL CHOSEONG FILLER..HANGUL JUNGSEONG FILLER
    (0x17B4, 0x17B5),  # KHMER VOWEL INHERENT AQ..KHMER VOWEL INHERENT AA
    (0x180B, 0x180D),  # MONGOLIAN FREE VARIATION SELECTOR ONE..THREE
    (0x180E, 0x180E),  # MONGOLIAN VOWEL SEPARATOR
    (0x180F, 0x180F),  # MONGOLIAN FREE VARIATION SELECTOR FOUR
    (0x200B, 0x200F),  # ZERO WIDTH SPACE..RIGHT-TO-LEFT MARK
    (0x202A, 0x202E),  # LEFT-TO-RIGHT EMBEDDING..RIGHT-TO-LEFT OVERRIDE
    (0x2060, 0x2064),  # WORD JOINER..INVISIBLE PLUS
    (0x2065, 0x2065),  # <reserved-2065>
    (0x2066, 0x206F),  # LEFT-TO-RIGHT ISOLATE..NOMINAL DIGIT SHAPES
    (0x3164, 0x3164),  # HANGUL FILLER
    (0xFE00, 0xFE0F),  # VARIATION SELECTOR-1..VARIATION SELECTOR-16
    (0xFEFF, 0xFEFF),  # ZERO WIDTH NO-BREAK SPACE
    (0xFFA0, 0xFFA0),  # HALFWIDTH HANGUL FILLER
    (0xFFF0, 0xFFF8),  # <reserved-FFF0>..<reserved-FFF8>
    (0x1BCA0, 0x1BCA3),  # SHORTHAND FORMAT LETTER OVERLAP..SHORTHAND FORMAT UP STEP
    (0x1D173, 0x1D17A),  # MUSICAL SYMBOL BEGIN BEAM..MUSICAL SYMBOL END PHRASE
    (0xE0000, 0xE0000),  # <reserved-E0000>
    (0xE0001, 0xE0001),  # LANGUAGE TAG
    (0xE0002, 0xE001F),  # <reserved-E0002>..<reserved-E001F>
    (0xE0020, 0xE007F),  # TAG SPACE..CANCEL TAG
    (0xE0080, 0xE00FF),  # <reserved-E0080>..<reserved-E00FF>
    (0xE0100, 0xE01EF),  # VARIATION SELECTOR-17..VARIATION SELECTOR-256
    (0xE01F0, 0xE0FFF),  # <reserved-E01F0>..<reserved-E0FFF>
)
_INVISIBLE = re.compile(
    "[" + "".join(f"\\U{low:08x}-\\U{high:08x}" for low, high in DEFAULT_IGNORABLE) + "]"
)


def check_visible(value: str, *, field: str) -> str:
    """Refuse an id or email holding a default-ignorable code point.

    Such a character shows as nothing, so "acme" followed by U+200B would be a second,
    look-alike "acme" beside the real one; `strip()` and NFKC keep most of them.
    """
    found = _INVISIBLE.search(value)
    if found is not None:
        raise InvalidInput(
            "invisible_character",
            f"{field} holds an invisible character (U+{ord(found.group()):04X}); "
            "ids and emails are matched exactly",
            field=field,
        )
    return value


def check_text(value: str, *, field: str, max_length: int, what: str = "value") -> str:
    """Refuse empty-after-trimming or over-long text."""
    if not value.strip():
        raise InvalidInput("empty_value", f"{field} must not be empty", field=field)
    if len(value) > max_length:
        raise InvalidInput(
            "too_long", f"{field} is longer than {max_length} characters", field=field
        )
    return value


def check_identifier(value: str, *, field: str, limits: Limits) -> str:
    """An id (user_id, company id, visitor_id, event_id, deal id): 1-255 chars, none of them
    invisible, no surrounding whitespace, and not a placeholder.

    Placeholders such as "null" or "guest" come from templates that rendered a missing value;
    accepting them would merge unrelated people into one record.
    """
    check_text(value, field=field, max_length=limits.max_id_length)
    check_visible(value, field=field)
    if value != value.strip():
        # "u_victim " must not become a second, look-alike contact of "u_victim".
        raise InvalidInput(
            "invalid_id",
            f"{field} has leading or trailing whitespace; ids are matched exactly",
            field=field,
        )
    if value.strip(".") == "":
        raise InvalidInput(
            "invalid_id", f"{field} {value!r} is only dots, which URLs cannot address", field=field
        )
    if value.strip().lower() in limits.placeholder_ids:
        raise InvalidInput(
            "placeholder_id",
            f"{field} {value!r} looks like a placeholder, not a real id",
            field=field,
        )
    return value


@functools.lru_cache(maxsize=16_384)  # returning users send the same addresses again and again
def parse_email(value: str, *, field: str = "email", limits: Limits) -> Email:
    """Check email syntax (a `user_hash` signs the value as sent, not this one).

    The matching key is the address after Unicode NFKC normalization, trimming and
    lower-casing, with the domain in its IDNA (punycode) form: a full-width letter or a
    Unicode domain cannot make a second "alice@acme.com".
    """
    display = value.strip()
    check_text(display, field=field, max_length=limits.max_id_length)
    check_visible(display, field=field)
    folded = unicodedata.normalize("NFKC", display).strip()
    try:
        local_part, domain = _email_parts(folded)
    except EmailNotValidError as exc:
        raise InvalidInput(
            "invalid_email", f"{field} is not a valid email: {exc}", field=field
        ) from None
    return Email(display=display, normalized=f"{local_part}@{domain}".lower())


@functools.lru_cache(maxsize=4096)
def _email_parts(folded: str) -> tuple[str, str]:
    """The syntax check (email_validator, the costly part), once an address: an import
    checks each row's address when it reads ahead and again when it writes the row."""
    plain = _plain_email(folded)
    if plain is not None:
        return plain
    checked = validate_email(folded, check_deliverability=False)
    return checked.local_part, checked.ascii_domain or checked.domain


# Most addresses are plain ASCII: a dot-atom of letters, digits, `_`, `+` and `-`, then a host
# name ending in a top-level domain of letters. email_validator's answer for them is the
# address itself (the domain in lower case) once a few lengths and reserved names are checked,
# so it is not asked: it costs about 100 us an address, the better part of an import row's
# check. Any other address is asked. tests/unit/test_validation.py holds the two to the same
# answer over generated addresses of this shape.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)


def _plain_email(folded: str) -> tuple[str, str] | None:
    """email_validator's (local part, ASCII domain) for a plain address, or None when the
    address is not plain (ask email_validator)."""
    if len(folded) > 254 or not _PLAIN_EMAIL.fullmatch(folded):
        return None
    local, domain = folded.split("@")
    domain = domain.lower()
    if len(local) > 64 or len(domain) > 253 or "--" in domain:
        return None
    if any(domain == name or domain.endswith("." + name) for name in SPECIAL_USE_DOMAIN_NAMES):
        return None
    return local, domain


def normalize_email(value: str) -> str:
    """The matching key of an email that may not be valid (a signed claim): as
    `parse_email` when it parses, else NFKC, trimmed and lower-cased."""
    try:
        return parse_email(value, limits=Limits()).normalized
    except InvalidInput:
        return unicodedata.normalize("NFKC", value).strip().lower()


def _check_scalar(value: Any, *, field: str, limits: Limits) -> None:
    if value is None or isinstance(value, bool):
        return
    if isinstance(value, str):
        if len(value) > limits.max_string_value_length:
            raise InvalidInput(
                "too_long",
                f"{field} is longer than {limits.max_string_value_length} characters",
                field=field,
            )
        return
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise InvalidInput("invalid_number", f"{field} must be a finite number", field=field)
        if abs(value) > limits.max_abs_number:
            raise InvalidInput(
                "invalid_number", f"{field} is out of range (|n| <= 2^53)", field=field
            )
        return
    raise InvalidInput(
        "invalid_metadata_value",
        f"{field} must be a string, number, boolean, null or a list of those",
        field=field,
    )


def check_metadata(value: Mapping[str, Any], *, field: str, limits: Limits) -> Metadata:
    """Enforce the metadata limits: key count and length, scalar or flat-list values."""
    if len(value) > limits.max_metadata_keys:
        raise InvalidInput(
            "too_many_keys",
            f"{field} has {len(value)} keys; at most {limits.max_metadata_keys} per call",
            field=field,
        )
    for key, item in value.items():
        key_field = f"{field}.{key}"
        if not 1 <= len(key) <= limits.max_metadata_key_length:
            raise InvalidInput(
                "too_long" if key else "empty_value",
                f"{field} keys must be 1-{limits.max_metadata_key_length} characters",
                field=key_field[:200],
            )
        if isinstance(item, list):
            if len(item) > limits.max_list_length:
                raise InvalidInput(
                    "too_long",
                    f"{key_field} has more than {limits.max_list_length} items",
                    field=key_field,
                )
            for index, element in enumerate(item):
                _check_scalar(element, field=f"{key_field}[{index}]", limits=limits)
        else:
            _check_scalar(item, field=key_field, limits=limits)
    return dict(value)


def merge_metadata(current: Mapping[str, Any], patch: Mapping[str, Any]) -> Metadata:
    """Merge `patch` into `current` key by key; a `None` value deletes the key."""
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def check_protected_keys(
    patch: Mapping[str, Any], *, protected: frozenset[str], signed: Mapping[str, Any], field: str
) -> None:
    """Refuse an unsigned write to a protected key (a signed claim may write it)."""
    for key in patch:
        if key in protected and not (key in signed and signed[key] == patch[key]):
            raise Forbidden(
                "protected_attribute",
                f"{field}.{key} is protected: only signed claims or the team API may write it",
                field=f"{field}.{key}",
            )

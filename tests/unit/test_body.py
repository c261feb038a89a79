"""Strict JSON body parsing at the edge."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hal.api.body import _check_strings, parse_json_body
from hal.domain.errors import BadRequest, InvalidInput


@pytest.mark.parametrize(
    "raw",
    [b'{"a": NaN}', b'{"a": 1, "a": 2}', b"\xff", b"[" * 100 + b"]" * 100, b'{"a": -Infinity}'],
)
def test_what_json_does_not_allow_is_400(raw):
    with pytest.raises(BadRequest):
        parse_json_body(raw)


def test_nul_characters_are_refused_naming_the_field():
    with pytest.raises(InvalidInput) as refused:
        parse_json_body(b'{"company": {"name": "a\\u0000b"}}')
    assert refused.value.field == "company.name"


def test_plain_json_passes():
    assert parse_json_body('{"a": [1, "é", null]}'.encode()) == {"a": [1, "é", None]}


# Any JSON value: strings of any code point (NUL and lone surrogates included), nested.
_TEXT = st.text(st.characters(exclude_categories=()), max_size=6)
_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | _TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_TEXT, inner, max_size=3),
    max_leaves=40,
)


def _outcome(parse: Callable[[], Any]) -> tuple[Any, ...]:
    try:
        return ("parsed", parse())
    except (BadRequest, InvalidInput) as refused:
        return (type(refused), refused.code, refused.field)


@given(_VALUES, st.booleans(), st.integers(0, 40))
def test_a_body_not_walked_is_one_the_walk_would_pass(value, ascii_only, depth):
    """Bodies without a `\\u` escape and few brackets skip `_check_strings`; every body
    answers as if it had been walked."""
    for _ in range(depth):
        value = [value]
    body = json.dumps(value, ensure_ascii=ascii_only).encode("utf-8", "surrogatepass")

    def walked() -> Any:
        document = parse_json_body(body)
        _check_strings(document, "", 0)
        return document

    assert _outcome(lambda: parse_json_body(body)) == _outcome(walked)

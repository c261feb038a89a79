"""Strict JSON body parsing at the edge."""

from __future__ import annotations

import pytest

from hal.api.body import parse_json_body
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

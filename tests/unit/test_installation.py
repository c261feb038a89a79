"""README "Installation check and refusals": metrics, user keys, and what a refusal keeps."""

from __future__ import annotations

from datetime import UTC, datetime

from hal.domain.installation import (
    UNSIGNED,
    VERIFIED,
    day_of,
    identify_metric,
    redact,
    user_key,
)


def test_an_identify_counts_as_verified_unsigned_or_failed_by_its_code():
    assert identify_metric(refused_code=None, proven=True) == VERIFIED
    assert identify_metric(refused_code=None, proven=False) == UNSIGNED
    assert identify_metric(refused_code="hash_mismatch", proven=False) == (
        "identify.failed:hash_mismatch"
    )


def test_users_are_counted_by_a_hash_never_by_their_value():
    key = user_key("u-42", None)
    assert key is not None and len(key) == 32 and "u-42" not in key
    assert user_key(None, " Ann@Acme.com ") == user_key(None, "ann@acme.com")
    assert user_key("ann@acme.com", None) != user_key(None, "ann@acme.com")
    assert user_key(None, None) is None


def test_a_refusal_keeps_no_quoted_value_and_nothing_shaped_like_a_secret():
    assert redact("company.id 'none' looks like a placeholder") == (
        "company.id '…' looks like a placeholder"
    )
    hashed = "user_hash 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 is wrong"
    assert redact(hashed) == "user_hash … is wrong"
    assert len(redact("x" * 2000)) <= 500


def test_calls_are_counted_by_their_utc_day():
    assert day_of(datetime(2026, 12, 5, 23, 59, tzinfo=UTC)) == "2026-12-05"

"""user_hash and identity_token checks (README "Identity verification")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import jwt
import pytest

from hal.domain.errors import InvalidInput, Unauthorized
from hal.domain.verification import (
    VerificationMode,
    compute_user_hash,
    matching_secret,
    resolve_proof,
    signed_key,
    user_hash_matches,
)

SECRET = "a-project-identity-secret-of-32-bytes-or-more"


def test_user_hash_is_lowercase_hex_hmac_sha256():
    # RFC 4231, test case 2.
    assert (
        compute_user_hash("Jefe", "what do ya want for nothing?")
        == "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    )


def test_any_accepted_secret_verifies_and_case_does_not_matter():
    value = compute_user_hash("new", "u1")
    assert user_hash_matches(["old", "new"], "u1", value.upper())
    assert not user_hash_matches(["old"], "u1", value)


def test_the_matching_secret_is_named_by_its_place_current_first():
    assert matching_secret(["new", "old"], "u1", compute_user_hash("new", "u1")) == 0
    assert matching_secret(["new", "old"], "u1", compute_user_hash("old", "u1")) == 1
    assert matching_secret(["new", "old"], "u2", compute_user_hash("old", "u1")) is None


def test_a_hash_to_check_signs_exactly_one_key():
    assert signed_key(user_id="u1", email=None) == ("user_id", "u1")
    assert signed_key(user_id=None, email="A@x.com") == ("email", "A@x.com")
    with pytest.raises(InvalidInput) as both:
        signed_key(user_id="u1", email="a@x.com")
    with pytest.raises(InvalidInput) as neither:
        signed_key(user_id=None, email=None)
    assert (both.value.field, neither.value.field) == ("email", "user_id")


def resolve(mode=VerificationMode.ENABLED, **fields):
    fields = {
        "user_id": None,
        "email": None,
        "name": None,
        "user_hash": None,
        "identity_token": None,
        **fields,
    }
    return resolve_proof(mode=mode, secrets=[SECRET], **fields)


def test_the_hash_signs_the_user_id_when_one_is_sent():
    _, proof = resolve(user_id="u1", email="A@x.com", user_hash=compute_user_hash(SECRET, "u1"))
    assert proof.user_id == "u1" and proof.email is None


def test_the_hash_signs_the_email_when_no_user_id_is_sent():
    _, proof = resolve(email=" A@x.com", user_hash=compute_user_hash(SECRET, " A@x.com"))
    assert proof.email == "a@x.com" and proof.user_id is None


def test_a_wrong_hash_is_refused():
    with pytest.raises(Unauthorized) as refused:
        resolve(user_id="u1", user_hash=compute_user_hash(SECRET, "u2"))
    assert refused.value.code == "invalid_user_hash"


def test_enforced_needs_a_proof():
    with pytest.raises(Unauthorized):
        resolve(mode=VerificationMode.ENFORCED, user_id="u1")


def test_disabled_ignores_everything():
    claims, proof = resolve(mode=VerificationMode.DISABLED, user_id="u1", user_hash="nonsense")
    assert not proof.verified and claims.user_id == "u1"


def token(**claims):
    claims.setdefault("exp", datetime.now(UTC) + timedelta(minutes=1))
    return jwt.encode(claims, SECRET, algorithm="HS256")


def test_token_claims_win_over_the_body_and_are_all_signed():
    claims, proof = resolve(
        user_id="typed", name="typed", identity_token=token(user_id="u1", email="E@x.com", name="N")
    )
    assert (claims.user_id, claims.email, claims.name) == ("u1", "E@x.com", "N")
    assert (proof.user_id, proof.email, proof.name) == ("u1", "e@x.com", "N")


def test_a_token_without_exp_or_expired_is_refused():
    no_exp = jwt.encode({"user_id": "u1"}, SECRET, algorithm="HS256")
    for bad in (no_exp, token(user_id="u1", exp=datetime.now(UTC) - timedelta(seconds=5))):
        with pytest.raises(Unauthorized):
            resolve(identity_token=bad)


def test_a_token_with_another_algorithm_is_refused():
    none_alg = jwt.encode(
        {"user_id": "u1", "exp": datetime.now(UTC) + timedelta(minutes=1)}, None, algorithm="none"
    )
    with pytest.raises(Unauthorized):
        resolve(identity_token=none_alg)

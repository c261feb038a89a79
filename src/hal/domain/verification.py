"""Identity verification: the HMAC `user_hash`, the signed `identity_token`, and what they prove.

A proof names the exact values it signs. Matching asks the proof about the one key it matched
through (user_id or email), so an unsigned field can never reach a contact (README "Identity
verification").
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from enum import StrEnum
from typing import Any, Literal

import jwt

from hal.domain.errors import InvalidInput, Unauthorized
from hal.domain.validation import normalize_email


class VerificationMode(StrEnum):
    DISABLED = "disabled"
    ENABLED = "enabled"
    ENFORCED = "enforced"


@dataclass(frozen=True)
class Proof:
    """What the request's signature vouches for. Empty means unverified."""

    user_id: str | None = None
    email: str | None = None  # normalized (trimmed, lower-case)
    name: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    # The identity_token's `company_ids` claim; None when the token has none (or no token).
    company_ids: frozenset[str] | None = None

    @property
    def verified(self) -> bool:
        return self.user_id is not None or self.email is not None

    def signs_user_id(self, user_id: str | None) -> bool:
        return user_id is not None and self.user_id == user_id

    def signs_email(self, email: str | None) -> bool:
        return email is not None and self.email == email


UNVERIFIED = Proof()


class ProofRefused(Unauthorized):
    """A wrong or missing proof. `reason` is what the installation check counts it as:
    hash_mismatch, token_expired, token_invalid or proof_required."""

    def __init__(self, code: str, message: str, *, field: str, reason: str) -> None:
        super().__init__(code, message, field=field)
        self.reason = reason


def compute_user_hash(secret: str, value: str) -> str:
    """Lowercase hex HMAC-SHA256 of `value` keyed by the project's identity secret."""
    return hmac.new(secret.encode(), value.encode(), hashlib.sha256).hexdigest()


def user_hash_matches(secrets: Iterable[str], value: str, user_hash: str) -> bool:
    """Compare in constant time against every secret currently accepted (rotation grace)."""
    return matching_secret(secrets, value, user_hash) is not None


def matching_secret(secrets: Iterable[str], value: str, user_hash: str) -> int | None:
    """Which accepted secret (0: the current one, 1: the previous one) `user_hash` signs
    `value` with, or None."""
    candidate = user_hash.strip().lower().encode()
    matched = None
    for position, secret in enumerate(secrets):
        expected = compute_user_hash(secret, value).encode()
        # No early exit: the time taken does not reveal which secret matched.
        if hmac.compare_digest(expected, candidate) and matched is None:
            matched = position
    return matched


SignedKey = Literal["user_id", "email"]


def signed_key(*, user_id: str | None, email: str | None) -> tuple[SignedKey, str]:
    """The one value a user_hash to check signs: a user_id or an email, as the widget sends
    it (exactly one of them)."""
    if user_id is not None and email is not None:
        raise InvalidInput(
            "one_key_only", "give user_id or email, not both: a hash signs one", field="email"
        )
    if user_id is not None:
        return "user_id", user_id
    if email is not None:
        return "email", email
    raise InvalidInput(
        "missing_field", "give the user_id or the email the hash signs", field="user_id"
    )


def decode_identity_token(secrets: Iterable[str], token: str) -> dict[str, Any]:
    """Decode an HS256 JWT signed with an accepted identity secret; `exp` is required."""
    last_error: jwt.PyJWTError | None = None
    for secret in secrets:
        try:
            claims: dict[str, Any] = jwt.decode(
                token, secret, algorithms=["HS256"], options={"require": ["exp"]}
            )
            return claims
        except jwt.ExpiredSignatureError:
            raise ProofRefused(
                "invalid_identity_token",
                "identity_token has expired",
                field="identity_token",
                reason="token_expired",
            ) from None
        except jwt.PyJWTError as exc:
            last_error = exc
    raise ProofRefused(
        "invalid_identity_token",
        f"identity_token is not valid for this project ({last_error})",
        field="identity_token",
        reason="token_invalid",
    )


@dataclass(frozen=True)
class Claims:
    """The identity fields after signed token claims have overridden the body."""

    user_id: str | None
    email: str | None  # raw, as sent
    name: str | None


def resolve_proof(
    *,
    mode: VerificationMode,
    secrets: list[str],
    user_id: str | None,
    email: str | None,
    name: str | None,
    user_hash: str | None,
    identity_token: str | None,
) -> tuple[Claims, Proof]:
    """Check `user_hash` / `identity_token` under the project's mode.

    Returns the identity fields to use (token claims win over the body) and what is proven.
    Raises Unauthorized for a wrong hash or token, or a missing one under `enforced`.
    """
    claims = Claims(user_id=user_id, email=email, name=name)
    if mode is VerificationMode.DISABLED:
        return claims, UNVERIFIED

    proof = UNVERIFIED
    if identity_token is not None:
        token = decode_identity_token(secrets, identity_token)
        signed_user_id = _claim_str(token, "user_id")
        signed_email = _claim_str(token, "email")
        signed_name = _claim_str(token, "name")
        raw_metadata = token.get("metadata")
        signed_metadata: dict[str, Any] = raw_metadata if isinstance(raw_metadata, dict) else {}
        claims = Claims(
            user_id=signed_user_id if signed_user_id is not None else claims.user_id,
            email=signed_email if signed_email is not None else claims.email,
            name=signed_name if signed_name is not None else claims.name,
        )
        if signed_user_id is None and signed_email is None:
            raise ProofRefused(
                "invalid_identity_token",
                "identity_token must carry a user_id or an email claim",
                field="identity_token",
                reason="token_invalid",
            )
        proof = Proof(
            user_id=signed_user_id,
            email=normalize_email(signed_email) if signed_email is not None else None,
            name=signed_name,
            metadata=signed_metadata,
            company_ids=_claim_ids(token, "company_ids"),
        )

    if user_hash is not None:
        signed_value = claims.user_id if claims.user_id is not None else claims.email
        if signed_value is None or not user_hash_matches(secrets, signed_value, user_hash):
            raise ProofRefused(
                "invalid_user_hash",
                "user_hash does not match the HMAC-SHA256 of "
                + ("user_id" if claims.user_id is not None else "email"),
                field="user_hash",
                reason="hash_mismatch",
            )
        if claims.user_id is not None:
            proof = replace(proof, user_id=claims.user_id)
        else:
            assert claims.email is not None
            proof = replace(proof, user_id=None, email=normalize_email(claims.email))

    if mode is VerificationMode.ENFORCED and not proof.verified:
        raise ProofRefused(
            "user_hash_required",
            "this project requires a valid user_hash or identity_token on identify",
            field="user_hash",
            reason="proof_required",
        )
    return claims, proof


def _claim_str(token: Mapping[str, Any], key: str) -> str | None:
    value = token.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise ProofRefused(
            "invalid_identity_token",
            f"identity_token claim {key!r} must be a non-empty string",
            field="identity_token",
            reason="token_invalid",
        )
    return value


def _claim_ids(token: Mapping[str, Any], key: str) -> frozenset[str] | None:
    value = token.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise ProofRefused(
            "invalid_identity_token",
            f"identity_token claim {key!r} must be a list of strings",
            field="identity_token",
            reason="token_invalid",
        )
    return frozenset(value)

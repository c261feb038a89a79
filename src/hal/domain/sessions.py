"""Widget session tokens: a signed, expiring statement "this visitor is bound to this contact".

Issued by identify and sent back as `Authorization: Bearer ...`; the visitor id alone is never
a credential because customers often make it equal to their user id.

A signed-in app sends the same token with every call, so a token's verification is kept (per
process, at most `VERIFIED_KEPT`, keyed by the secret and the token, a failed one too):
checking the signature again would give the same answer. Expiry is checked on every read.
"""

from __future__ import annotations

import functools
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import jwt
from jwt.algorithms import HMACAlgorithm
from jwt.utils import base64url_encode

AUDIENCE = "hal-widget"
VERIFIED_KEPT = 20_000


@dataclass(frozen=True, slots=True)
class Session:
    """What a valid session token states."""

    app_id: str
    visitor_id: str
    contact_id: int
    expires_at: int  # epoch seconds

    def fresh(self, now: datetime, ttl: timedelta) -> bool:
        """Whether at least half of a `ttl` is left: such a token can be answered again
        instead of a new one (README "Identify", the repeat identify)."""
        return self.expires_at - now.timestamp() >= ttl.total_seconds() / 2

    def fresh_until(self, ttl: timedelta) -> datetime:
        """The first instant the token is no longer `fresh`."""
        return datetime.fromtimestamp(self.expires_at - ttl.total_seconds() / 2, UTC)


# Verified tokens' claims, and None for tokens that failed (a bad signature stays bad).
_verified: dict[tuple[str, str], Session | None] = {}


def issue_session_token(
    *, secret: str, app_id: str, visitor_id: str, contact_id: int, now: datetime, ttl: timedelta
) -> str:
    claims = {
        "aud": AUDIENCE,
        "app": app_id,
        "vid": visitor_id,
        "sub": str(contact_id),
        "iat": int(now.timestamp()),
        "exp": int((now + ttl).timestamp()),
    }
    payload = base64url_encode(json.dumps(claims, separators=(",", ":")).encode())
    signed = _HEADER + b"." + payload
    return (signed + b"." + base64url_encode(_HS256.sign(signed, _signing_key(secret)))).decode()


# A token is what `jwt.encode(claims, secret, algorithm="HS256")` makes, byte for byte
# (tests/unit/test_sessions.py), signed by PyJWT's own HS256 with the key it checks and prepares
# once per secret: preparing the key again on each token (PyJWT looks for PEM, SSH, DER and
# JWK shapes) cost more than the signature.
_HS256 = HMACAlgorithm(HMACAlgorithm.SHA256)
_HEADER = base64url_encode(b'{"alg":"HS256","typ":"JWT"}')


@functools.lru_cache(maxsize=256)
def _signing_key(secret: str) -> bytes:
    return _HS256.prepare_key(secret)


def _verify(secret: str, token: str) -> Session | None:
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "app", "vid"]},
        )
        session = Session(claims["app"], claims["vid"], int(claims["sub"]), int(claims["exp"]))
    except (jwt.PyJWTError, TypeError, ValueError):
        return None
    if not isinstance(session.app_id, str) or not isinstance(session.visitor_id, str):
        return None
    return session


def session_of(*, secret: str, token: str, app_id: str, visitor_id: str) -> Session | None:
    """What the token states, if it is valid, unexpired and this app's and visitor's."""
    key = (secret, token)
    if key in _verified:
        session = _verified[key]
    else:
        session = _verify(secret, token)
        while len(_verified) >= VERIFIED_KEPT:
            del _verified[next(iter(_verified))]  # the oldest
        _verified[key] = session
    if session is None or session.expires_at <= time.time():
        return None
    if session.app_id != app_id or session.visitor_id != visitor_id:
        return None
    return session


def read_session_token(*, secret: str, token: str, app_id: str, visitor_id: str) -> int | None:
    """The contact id the token vouches for, or None if it is invalid, expired or foreign."""
    session = session_of(secret=secret, token=token, app_id=app_id, visitor_id=visitor_id)
    return None if session is None else session.contact_id

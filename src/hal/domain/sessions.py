"""Widget session tokens: a signed, expiring statement "this visitor is bound to this contact".

Issued by identify and sent back as `Authorization: Bearer ...`; the visitor id alone is never
a credential because customers often make it equal to their user id.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import jwt

AUDIENCE = "hal-widget"


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
    return jwt.encode(claims, secret, algorithm="HS256")


def read_session_token(*, secret: str, token: str, app_id: str, visitor_id: str) -> int | None:
    """The contact id the token vouches for, or None if it is invalid, expired or foreign."""
    try:
        claims = jwt.decode(
            token,
            secret,
            algorithms=["HS256"],
            audience=AUDIENCE,
            options={"require": ["exp", "sub", "app", "vid"]},
        )
    except jwt.PyJWTError:
        return None
    if claims.get("app") != app_id or claims.get("vid") != visitor_id:
        return None
    try:
        return int(claims["sub"])
    except (TypeError, ValueError):
        return None

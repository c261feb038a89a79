"""The installation check's rules (README "Installation check and refusals"): what a widget
call counts as, the key an identified user is counted by, and what a refusal may keep."""

from __future__ import annotations

import hashlib
import re
from datetime import datetime

CALLS = "calls"
VERIFIED = "identify.verified"
UNSIGNED = "identify.unsigned"
FAILED = "identify.failed:"  # + the refusal's code
MAX_MESSAGE = 500
MAX_DAYS = 90  # counts older than this are dropped
KEEP_REFUSALS = 1000  # per project, newest

# A value a message quotes from the request ('...' or "..."), and anything that looks like a
# hash, a token or a secret (a long run of letters, digits, '-', '_', '.').
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"")
_SECRET_LIKE = re.compile(r"[A-Za-z0-9_\-.]{24,}")


def day_of(moment: datetime) -> str:
    """The UTC day a call is counted under, as YYYY-MM-DD (`date.isoformat`: a fifth of
    `strftime`'s cost, paid by every widget call)."""
    return moment.date().isoformat()


def identify_metric(*, refused_code: str | None, proven: bool) -> str:
    if refused_code is not None:
        return FAILED + refused_code
    return VERIFIED if proven else UNSIGNED


def user_key(user_id: str | None, email: str | None) -> str | None:
    """An identified user as the enforcement impact counts it: a hash of its user_id (else
    its lower-cased email), so the counts never hold the value."""
    value = f"u:{user_id}" if user_id else f"e:{email.strip().lower()}" if email else None
    if value is None:
        return None
    return hashlib.sha256(value.encode()).hexdigest()[:32]


def redact(message: str) -> str:
    """A refusal's message as the log keeps it: quoted request values and anything shaped like
    a hash, a token or a secret replaced by '…', at most 500 characters."""
    kept = _SECRET_LIKE.sub("…", _QUOTED.sub("'…'", message))
    return kept[:MAX_MESSAGE]

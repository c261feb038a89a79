"""Privacy rules: the keyed hashes a suppression keeps, how a merge combines two contacts,
retention periods, what an audit log filter asks for, and which kept rows name a person."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from hal.domain.crm import parse_instant
from hal.domain.errors import Conflict, InvalidInput

MAX_RETENTION_DAYS = 36_500


def names_person(
    row: Mapping[str, Any] | None, *, user_ids: Collection[str], emails: Collection[str]
) -> bool:
    """Whether a row kept as it was sent (an import's failed row: column -> cell) names the
    person: a cell that is one of their user_ids, or one of their emails (normalized emails;
    a cell is compared trimmed, NFKC-folded and lower-cased, as an email's key is made)."""
    for cell in (row or {}).values():
        if not isinstance(cell, str):
            continue
        value = cell.strip()
        if value in user_ids or unicodedata.normalize("NFKC", value).strip().lower() in emails:
            return True
    return False


def new_suppression_key() -> str:
    return secrets.token_hex(32)


def suppression_hash(key: str, kind: str, value: str) -> str:
    """HMAC-SHA256 of one identity key (`user_id` exact, `email` normalized as identify
    matches it), so a suppression can be checked without keeping the value itself."""
    message = f"{kind}\x00{value}".encode()
    return hmac.new(bytes.fromhex(key), message, hashlib.sha256).hexdigest()


def suppression_hashes(
    key: str, *, user_id: str | None, email_key: str | None
) -> tuple[str | None, str | None]:
    return (
        suppression_hash(key, "user_id", user_id) if user_id is not None else None,
        suppression_hash(key, "email", email_key) if email_key is not None else None,
    )


def erased_values(changes: dict[str, Any]) -> dict[str, Any]:
    """An audit entry's changes once its person is erased: which fields changed stays, what
    they held goes."""
    return dict.fromkeys(changes)


MAX_AUDIT_ACTION = 64
MAX_ROW_ID = 2**63 - 1
_ACTOR = re.compile(r"(agent|token)(?::([0-9]{1,19}))?|cli")
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True)
class AuditFilter:
    """Which audit entries a page shows; None asks nothing of that part."""

    actor_kind: str | None = None  # agent | token | cli
    actor_id: int | None = None  # None: any of that kind
    action: str | None = None  # exact
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive


def audit_filter(
    *,
    actor: str | None = None,
    action: str | None = None,
    since: str | None = None,
    until: str | None = None,
) -> AuditFilter:
    """Read the filter as written: `actor` "token:3", "agent:5", "agent" (any agent), "token"
    or "cli"; `since` and `until` ISO dates or date-times (no offset: UTC), a date alone being
    its whole day (`until` 2026-12-05 keeps that day)."""
    kind, actor_id = _actor(actor) if actor else (None, None)
    if action is not None and len(action) > MAX_AUDIT_ACTION:
        raise InvalidInput(
            "too_long", f"action is longer than {MAX_AUDIT_ACTION} characters", field="action"
        )
    start = _moment(since, field="since", day_end=False) if since else None
    end = _moment(until, field="until", day_end=True) if until else None
    if start is not None and end is not None and end <= start:
        raise InvalidInput("invalid_range", "until must come after since", field="until")
    return AuditFilter(kind, actor_id, action or None, start, end)


def _actor(text: str) -> tuple[str, int | None]:
    found = _ACTOR.fullmatch(text.strip())
    actor_id = int(found.group(2)) if found and found.group(2) else None
    if found is None or (actor_id is not None and not 1 <= actor_id <= MAX_ROW_ID):
        raise InvalidInput(
            "invalid_actor",
            'actor is "token:ID", "agent:ID", "token", "agent" or "cli"',
            field="actor",
        )
    return found.group(1) or "cli", actor_id


def _moment(value: str, *, field: str, day_end: bool) -> datetime:
    text = value.strip()
    try:
        if not _DAY.fullmatch(text):
            return parse_instant(text, field=field)
        day = date.fromisoformat(text)
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        return start + timedelta(days=1) if day_end else start
    except (ValueError, OverflowError):
        # A day that does not exist, or one at the calendar's ends.
        raise InvalidInput("invalid_date", f"{field} is not a date", field=field) from None


def check_retention_days(value: int | None, *, field: str) -> int | None:
    if value is not None and not 1 <= value <= MAX_RETENTION_DAYS:
        raise InvalidInput(
            "invalid_retention", f"{field} must be 1-{MAX_RETENTION_DAYS} days", field=field
        )
    return value


@dataclass(frozen=True)
class MergeSide:
    """What a merge needs of one contact."""

    id: int
    user_id: str | None
    email: str | None
    email_normalized: str | None
    name: str | None
    metadata: dict[str, Any]
    verified: bool
    email_verified: bool


@dataclass(frozen=True)
class MergePlan:
    """`into` after the merge, and what of `from` it could not take."""

    user_id: str | None
    email: str | None
    email_normalized: str | None
    name: str | None
    metadata: dict[str, Any]
    verified: bool
    email_verified: bool
    # from's email when `into` keeps its own: identifies by it still reach `into`.
    email_alias: str | None
    changed: tuple[str, ...]


def proven(side: MergeSide) -> bool:
    """Whether a proof (a hash or an identity token) stands behind the contact."""
    return side.verified or side.email_verified


def verified_pair(source: MergeSide, into: MergeSide) -> bool:
    """Both contacts are verified, each by its own proof: after a merge either proof would
    reach the other person's data, so the team must say it means it."""
    return proven(source) and proven(into)


def plan_merge(
    source: MergeSide, into: MergeSide, *, confirm_verified_pair: bool = False
) -> MergePlan:
    """`into` wins; its blanks are filled from `from`; two different user_ids never merge;
    two contacts verified by different proofs merge only when confirmed."""
    if source.id == into.id:
        raise Conflict("same_contact", "a contact cannot be merged into itself", field="into")
    if source.user_id is not None and into.user_id is not None and source.user_id != into.user_id:
        raise Conflict(
            "conflicting_user_ids",
            "both contacts have a user_id: they are two people as far as HAL can tell",
            field="from",
        )
    if verified_pair(source, into) and not confirm_verified_pair:
        raise Conflict(
            "verified_pair",
            "both contacts are verified, each by its own proof: after the merge either proof"
            " reads the other's data; send confirm_verified_pair to merge them anyway",
            field="confirm_verified_pair",
        )
    takes_email = into.email_normalized is None and source.email_normalized is not None
    metadata = {**source.metadata, **into.metadata}
    plan = MergePlan(
        user_id=into.user_id if into.user_id is not None else source.user_id,
        email=source.email if takes_email else into.email,
        email_normalized=source.email_normalized if takes_email else into.email_normalized,
        name=into.name if into.name else source.name,
        metadata=metadata,
        verified=into.verified or (source.verified and into.user_id is None),
        email_verified=source.email_verified if takes_email else into.email_verified,
        email_alias=(
            source.email_normalized
            if source.email_normalized is not None and not takes_email
            else None
        ),
        changed=(),
    )
    before = {
        "user_id": into.user_id,
        "email": into.email,
        "name": into.name,
        "metadata": into.metadata,
        "verified": into.verified,
        "email_verified": into.email_verified,
    }
    after = {
        "user_id": plan.user_id,
        "email": plan.email,
        "name": plan.name,
        "metadata": plan.metadata,
        "verified": plan.verified,
        "email_verified": plan.email_verified,
    }
    changed = tuple(k for k in before if before[k] != after[k])
    return MergePlan(**{**plan.__dict__, "changed": changed})

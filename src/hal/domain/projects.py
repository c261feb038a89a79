"""Project settings rules: app ids, stage pipelines, allowed origins, protected keys, API
token labels."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from urllib.parse import urlsplit

from hal.domain.attributes import Attribute, Model
from hal.domain.errors import InvalidInput
from hal.domain.stages import StageMode
from hal.domain.validation import check_text
from hal.domain.verification import VerificationMode

APP_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CompanyClaims(StrEnum):
    """Who may name companies through the widget: any request (`open`), or only an
    identity_token's `company_ids` claim (`signed`)."""

    OPEN = "open"
    SIGNED = "signed"


class TokenKind(StrEnum):
    """What an API token may do: the team API, or also the admin API (`admin`)."""

    TEAM = "team"
    ADMIN = "admin"


MAX_TOKEN_LABEL = 255


def check_token_label(label: str | None) -> str | None:
    """A token's label, trimmed; a blank one is no label."""
    if label is None or not label.strip():
        return None
    return check_text(label.strip(), field="label", max_length=MAX_TOKEN_LABEL)


def check_app_id(app_id: str) -> str:
    if not APP_ID_PATTERN.match(app_id):
        raise InvalidInput(
            "invalid_app_id", "app_id must be 1-64 letters, digits, '_' or '-'", field="app_id"
        )
    return app_id


def normalize_origin(origin: str) -> str:
    """`https://App.Example.com/` -> `https://app.example.com` (what browsers send in Origin)."""
    parts = urlsplit(origin.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise InvalidInput(
            "invalid_origin",
            f"allowed origin {origin!r} must look like https://app.example.com",
            field="allowed_origins",
        )
    host = parts.hostname.lower()
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}"


def origin_allowed(origin: str | None, allowed: Iterable[str]) -> bool:
    """No list means any origin; otherwise the browser's Origin must be on it."""
    allowed = list(allowed)
    if not allowed or origin is None:
        # Requests without Origin come from servers, not browsers: CORS does not apply.
        return True
    try:
        return normalize_origin(origin) in allowed
    except InvalidInput:
        return False


def check_stages(stages: Iterable[str]) -> list[str]:
    cleaned = [stage.strip() for stage in stages if stage.strip()]
    if len(set(cleaned)) != len(cleaned):
        raise InvalidInput("duplicate_stage", "stages must be distinct", field="stages")
    return cleaned


@dataclass(frozen=True)
class ProjectConfig:
    """What a widget call needs to know of its project: settings and secrets, as plain data
    (cached per process; see `hal.services.project_cache`)."""

    id: int
    app_id: str
    identity_verification: VerificationMode
    stage_mode: StageMode
    stages: tuple[str, ...]
    allowed_origins: tuple[str, ...]
    protected_keys: frozenset[str]
    company_claims: CompanyClaims
    identity_secret: str
    previous_identity_secret: str | None
    previous_secret_expires_at: datetime | None
    session_secret: str
    # The key of the project's suppression hashes; None while it has none to check.
    suppression_key: str | None = None
    # Its attribute definitions, by model and key (README "Attributes").
    attributes: Mapping[Model, Mapping[str, Attribute]] = field(default_factory=dict)

    def attributes_of(self, model: Model) -> Mapping[str, Attribute]:
        return self.attributes.get(model, {})

    @property
    def verifies(self) -> bool:
        """Whether identities are checked at all (`enabled` or `enforced`)."""
        return self.identity_verification is not VerificationMode.DISABLED

    def protects(self, verified: bool) -> bool:
        """Whether a contact (or binding) marked verified gets a verified one's protection:
        only while the project checks identities (README "Who may read and write what")."""
        return verified and self.verifies

    def accepted_secrets(self, now: datetime) -> list[str]:
        """The identity secrets a hash or token may be signed with right now."""
        return accepted_secrets(
            self.identity_secret,
            self.previous_identity_secret,
            self.previous_secret_expires_at,
            now,
        )


def accepted_secrets(
    current: str, previous: str | None, previous_expires_at: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and the previous one until its grace period ends."""
    accepted = [current]
    if previous and previous_expires_at is not None and previous_expires_at > now:
        accepted.append(previous)
    return accepted

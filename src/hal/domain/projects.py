"""Project settings rules: app ids, stage pipelines, allowed origins, protected keys."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import urlsplit

from hal.domain.errors import InvalidInput

APP_ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


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

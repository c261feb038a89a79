"""The configurable limits on client input (README "Errors and limits")."""

from __future__ import annotations

from dataclasses import dataclass, field

DEFAULT_PLACEHOLDER_IDS = frozenset(
    {"null", "undefined", "none", "0", "-1", "anonymous", "guest", "nil", "nan"}
)


@dataclass(frozen=True)
class Limits:
    max_body_bytes: int = 64 * 1024
    max_id_length: int = 255
    max_name_length: int = 255
    max_metadata_keys: int = 100
    max_metadata_key_length: int = 64
    max_string_value_length: int = 1000
    max_list_length: int = 50
    max_event_name_length: int = 128
    max_company_ids: int = 50
    max_attributes: int = 250  # attribute definitions per model and project
    # JSON numbers beyond this lose precision in JavaScript and in some databases' JSON types.
    max_abs_number: float = 2.0**53
    placeholder_ids: frozenset[str] = field(default=DEFAULT_PLACEHOLDER_IDS)

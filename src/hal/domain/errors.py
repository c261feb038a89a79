"""One error hierarchy for every rule; the HTTP edge maps each kind to a status code."""

from __future__ import annotations

from typing import Any


def error_body(code: str, message: str, field: str | None = None, **details: Any) -> dict[str, Any]:
    """The one shape of every refusal: `{"error": {"code", "message", "field"}}`, and what a
    refusal adds (a 410's `merged_into`)."""
    return {"error": {"code": code, "message": message, "field": field, **details}}


class HalError(Exception):
    """A refusal a client can act on: a stable `code`, a sentence, and the field at fault."""

    def __init__(self, code: str, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field

    def body(self) -> dict[str, Any]:
        return error_body(self.code, self.message, self.field)


class BadRequest(HalError):
    """The request could not be read at all (malformed JSON, wrong content type)."""


class InvalidInput(HalError):
    """The request was read but a field breaks a rule or a limit."""


class Unauthorized(HalError):
    """A credential is missing or wrong."""


class Forbidden(HalError):
    """The caller is known but may not do this."""


class NotFound(HalError):
    """The thing addressed does not exist for this caller."""


class Conflict(HalError):
    """The request is valid but the current state does not allow it."""


class Gone(HalError):
    """The thing addressed existed and is no more (a merged contact); `details` says where it
    went."""

    def __init__(
        self, code: str, message: str, *, details: dict[str, object], field: str | None = None
    ) -> None:
        super().__init__(code, message, field=field)
        self.details = details


class UnsupportedMediaType(HalError):
    """The body is not JSON."""


class RateLimited(HalError):
    """Too many requests; `retry_after` says when to come back, in seconds."""

    def __init__(self, code: str, message: str, *, retry_after: int, field: str | None = None):
        super().__init__(code, message, field=field)
        self.retry_after = retry_after

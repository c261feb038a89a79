"""The one place that turns errors into `{"error": {"code", "message", "field"}}` responses."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from hal.domain import errors
from hal.services.installation import Claim

WIDGET_PREFIX = "/api/widget/"

log = logging.getLogger("hal")

STATUS_BY_KIND: dict[type[errors.HalError], int] = {
    errors.BadRequest: 400,
    errors.Unauthorized: 401,
    errors.Forbidden: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.UnsupportedMediaType: 415,
    errors.InvalidInput: 422,
    errors.RateLimited: 429,
}


class ErrorDetail(BaseModel):
    code: str
    message: str
    field: str | None = None
    merged_into: int | None = None  # 410 of a merged contact


class ErrorBody(BaseModel):
    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "Malformed JSON or wrong content type",
    401: "Missing or wrong credential (user_hash, identity_token, session token)",
    403: "Not allowed (origin, verification_required, protected_attribute)",
    404: "Unknown app_id or record",
    409: "The current state does not allow this",
    410: "The record is gone (a merged contact: `merged_into` names where it went)",
    413: "Body over the size limit",
    415: "Body is not JSON",
    422: "A field breaks a rule or a limit; `field` names it",
    429: "Rate limited; see Retry-After",
}


def error_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI entries for the error statuses a route can answer."""
    return {
        status: {"model": ErrorBody, "description": ERROR_DESCRIPTIONS[status]}
        for status in statuses
    }


def error_response(
    status: int,
    code: str,
    message: str,
    field: str | None = None,
    details: dict[str, Any] | None = None,
    **headers: str,
) -> JSONResponse:
    body = errors.error_body(code, message, field, **(details or {}))
    return JSONResponse(body, status_code=status, headers=headers or None)


def status_for(exc: errors.HalError) -> int:
    for kind in type(exc).__mro__:
        if kind in STATUS_BY_KIND:
            return STATUS_BY_KIND[kind]
    return 400


async def _hal_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, errors.HalError)
    headers = {}
    if isinstance(exc, errors.RateLimited):
        headers["Retry-After"] = str(exc.retry_after)
    details = exc.details if isinstance(exc, errors.Gone) else None
    return error_response(status_for(exc), exc.code, exc.message, exc.field, details, **headers)


PYDANTIC_CODES = {
    "missing": "missing_field",
    "string_too_long": "too_long",
    "too_long": "too_long",
    "string_too_short": "empty_value",
    "too_short": "empty_value",
    "json_invalid": "invalid_json",
    "enum": "invalid_choice",
    "literal_error": "invalid_choice",
}


def _field_name(location: tuple[Any, ...]) -> str | None:
    # The first part says where the field was (the body, the query string, ...); a field may
    # itself be called "body" or "query".
    sources = {"body", "query", "path", "header"}
    parts = list(location[1:] if location and location[0] in sources else location)
    # Pydantic names the union branch it tried ("str", "list[...]"); users want the field.
    parts = [p for p in parts if not (isinstance(p, str) and ("[" in p or p in _TYPE_NAMES))]
    name = ""
    for part in parts:
        name += f"[{part}]" if isinstance(part, int) else (f".{part}" if name else str(part))
    return name or None


_TYPE_NAMES = {"str", "int", "float", "bool", "none", "dict", "list", "function-after"}


def _most_specific(found: Sequence[Any]) -> Any:
    """A union (a metadata value) fails once per branch; a "wrong type" error per branch hides
    the one that says what is really wrong, such as a list that is too long."""
    first_field = _field_name(tuple(found[0].get("loc", ())))
    for error in found:
        same_field = _field_name(tuple(error.get("loc", ()))) == first_field
        if same_field and not str(error.get("type", "")).endswith("_type"):
            return error
    return found[0]


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    refusal: errors.HalError
    if _most_specific(exc.errors()).get("type") == "json_invalid":
        status, refusal = 400, errors.BadRequest("invalid_json", "the body is not valid JSON")
    else:
        code, message, field = describe_validation(exc.errors())
        status, refusal = 422, errors.InvalidInput(code, message, field=field)
    if request.scope["path"].startswith(WIDGET_PREFIX):
        _widget_refused(request, exc.body, status, refusal)
    return error_response(status, refusal.code, refusal.message, refusal.field)


def _widget_refused(request: Request, body: Any, status: int, refusal: errors.HalError) -> None:
    """A widget call refused before its route ran, for the installation check (when its body
    names a project)."""
    installation = request.app.state.installation
    keys = body if isinstance(body, dict) else {}
    app_id, visitor_id = keys.get("app_id"), keys.get("visitor_id")
    if not installation.counting or not isinstance(app_id, str) or len(app_id) > 255:
        return
    route = request.scope["path"].removeprefix(WIDGET_PREFIX)
    claim = Claim.of(keys.get("user_id"), keys.get("email")) if route == "identify" else None
    installation.refused(
        app_id, request.headers.get("origin"), route=route, status=status, error=refusal,
        visitor_id=visitor_id if isinstance(visitor_id, str) else None, identify=claim,
    )  # fmt: skip


def describe_validation(found: Sequence[Any]) -> tuple[str, str, str | None]:
    """A Pydantic validation failure as our (code, message, field)."""
    first = _most_specific(found)
    field = _field_name(tuple(first.get("loc", ())))
    code = PYDANTIC_CODES.get(first.get("type", ""), "invalid_field")
    return code, f"{field or 'body'}: {first.get('msg', 'is not valid')}", field


async def _http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    codes = {404: "not_found", 405: "method_not_allowed", 413: "body_too_large"}
    code = codes.get(exc.status_code, "http_error")
    headers = dict(exc.headers or {})
    return error_response(exc.status_code, code, str(exc.detail), None, None, **headers)


async def _unexpected(_: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error", exc_info=exc)
    return error_response(500, "internal_error", "an unexpected error occurred; it was logged")


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(errors.HalError, _hal_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(Exception, _unexpected)

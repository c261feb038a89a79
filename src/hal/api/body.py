"""Strict reading of JSON bodies, before FastAPI's own parsing.

Python's json module accepts what JSON does not (NaN, Infinity), keeps the last of duplicate
keys, and lets through NUL bytes and lone surrogates that PostgreSQL cannot store. All of
those are refused here as a clear 400/422 instead of a surprise later.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from hal.domain.errors import BadRequest, InvalidInput, UnsupportedMediaType

MAX_DEPTH = 32


def _no_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise BadRequest("invalid_json", f"duplicate key {key!r} in the JSON body")
        result[key] = value
    return result


def _refuse_constant(name: str) -> Any:
    raise BadRequest("invalid_json", f"{name} is not valid JSON")


def _check_strings(value: Any, path: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BadRequest("invalid_json", f"the JSON body nests deeper than {MAX_DEPTH} levels")
    if isinstance(value, str):
        if "\x00" in value:
            raise InvalidInput("invalid_string", f"{path} contains a NUL character", field=path)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidInput(
                "invalid_string", f"{path} contains an unpaired surrogate", field=path
            ) from None
    elif isinstance(value, dict):
        for key, item in value.items():
            _check_strings(key, path or "body", depth + 1)
            _check_strings(item, f"{path}.{key}" if path else key, depth + 1)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{path}[{index}]", depth + 1)


def parse_json_body(body: bytes) -> Any:
    """Parse a request body as strict JSON or raise a HalError naming the problem."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("invalid_json", "the body is not valid UTF-8") from None
    try:
        document = json.loads(
            text, object_pairs_hook=_no_duplicate_keys, parse_constant=_refuse_constant
        )
    except RecursionError:
        raise BadRequest("invalid_json", "the JSON body nests too deeply") from None
    except ValueError as exc:  # JSONDecodeError, or an integer too long to convert
        raise BadRequest("invalid_json", f"the body is not valid JSON: {exc}") from None
    if _may_hold_refused(body):
        _check_strings(document, "", 0)
    return document


def _may_hold_refused(body: bytes) -> bool:
    """Whether the parsed body needs `_check_strings`' walk. A NUL or a lone surrogate reaches
    a string only through a `\\u` escape (the parser refuses raw control characters, the UTF-8
    decoding raw surrogates), and nesting deeper than MAX_DEPTH takes more opening brackets
    than that: a body with neither, as most are, is not walked."""
    return b"\\u" in body or body.count(b"{") + body.count(b"[") > MAX_DEPTH


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


class _ParsedJSONRequest(Request):
    """A request whose JSON body was already parsed (strictly) by the route: FastAPI's own
    `request.json()` gets that document instead of parsing the body a second time."""

    document: Any = None

    async def json(self) -> Any:
        return self.document


def encoded(answer: BaseModel) -> bytes:
    """A route's answer (the model its route declares) encoded once, by the model's own
    serializer: FastAPI would first validate a model we built against that same model."""
    return answer.__pydantic_serializer__.to_json(answer, by_alias=True)


def json_response(content: bytes, status: int = 200) -> Response:
    return Response(content, status, media_type="application/json")


# An answer a route may give from the request's raw body, before it is parsed; None: parse it
# and run the route.
Shortcut = Callable[[Request, bytes], Awaitable[Response | None]]


class StrictJSONRoute(APIRoute):
    """An APIRoute whose JSON body is parsed once, by `parse_json_body`; `shortcut`, set on a
    subclass, may answer from the body's bytes first (api/widget.py: identify)."""

    shortcut: Shortcut | None = None

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        has_body = self.body_field is not None
        shortcut = type(self).shortcut

        async def strict_handler(request: Request) -> Response:
            if has_body:
                request = _ParsedJSONRequest(request.scope, request.receive)
                body = await request.body()
                if not _is_json(request.headers.get("content-type", "")):
                    raise UnsupportedMediaType(
                        "unsupported_media_type",
                        "send the body as JSON with 'Content-Type: application/json'",
                        field="content-type",
                    )
                if not body:
                    raise BadRequest("invalid_json", "the body is empty; send a JSON object")
                if shortcut is not None and (answer := await shortcut(request, body)) is not None:
                    return answer
                request.document = parse_json_body(body)
            return await handler(request)

        return strict_handler


class EncodedRoute(StrictJSONRoute):
    """A StrictJSONRoute whose endpoint's answer, a model it built (the one its route declares),
    is encoded once by the model's own serializer (`encoded`): FastAPI would first validate it
    against that same model, then walk it through `jsonable_encoder`. Other answers (a
    Response, a dict) go on as FastAPI serves them."""

    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        status = kwargs.get("status_code") or 200

        # The endpoint itself is wrapped (its signature kept): a router included in the app
        # builds its handler from the endpoint, not from this route's dependant.
        @functools.wraps(endpoint)
        async def answered(**values: Any) -> Any:
            answer = await endpoint(**values)
            if isinstance(answer, BaseModel):
                return json_response(encoded(answer), status)
            return answer

        super().__init__(path, answered, **kwargs)

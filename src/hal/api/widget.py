"""Public widget routes (README "Identify" and "CORS"): called from browsers, CORS per project."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Query, Request, Response

from hal import metrics
from hal.api.body import EncodedRoute, encoded, json_response
from hal.api.deps import WIDGET_SESSION_SECURITY, bearer_token, widget_of
from hal.api.errors import error_responses
from hal.api.presenters import (
    company_out,
    contact_out,
    conversation_out,
    deal_out,
    message_out,
    optional_company_out,
    stage_out,
)
from hal.db.engine import Tx
from hal.domain.errors import HalError
from hal.schemas import (
    EventRef,
    IdentifyRequest,
    IdentifyResponse,
    SetDealRequest,
    SetDealResponse,
    SetPropertiesRequest,
    SetPropertiesResponse,
    SetStageRequest,
    SetStageResponse,
    TrackRequest,
    TrackResponse,
    WidgetMessageRequest,
    WidgetMessageResponse,
    WidgetMessagesResponse,
)
from hal.schemas.widget import WidgetKeys
from hal.services.crm import set_deal, set_stage, track
from hal.services.identify import identify
from hal.services.installation import Claim
from hal.services.properties import set_properties
from hal.services.repeat_answers import KeptAnswer, RepeatAnswers
from hal.services.widget_call import Caller
from hal.services.widget_messages import post_widget_message, read_widget_messages

router = APIRouter(prefix="/api/widget", tags=["widget"], route_class=EncodedRoute)

T = TypeVar("T")


async def _in_transaction(
    service: Callable[..., Awaitable[T]], body: WidgetKeys, request: Request
) -> T:
    """Run a widget use case on its request in one transaction."""
    widget = widget_of(request)
    limits = widget.settings.limits
    return await widget.run(
        body.app_id,
        body.visitor_id,
        lambda tx, caller: service(tx, request=body, caller=caller, limits=limits),
    )


async def identify_route(body: IdentifyRequest, request: Request) -> Response:
    """Tell HAL who the visitor is; match or create the contact and link their company."""
    widget = widget_of(request)
    settings = widget.settings
    ttl = timedelta(seconds=settings.session_token_ttl_seconds)

    async def work(tx: Tx, caller: Caller) -> Any:
        return await identify(
            tx, request=body, caller=caller, limits=settings.limits, session_ttl=ttl
        )

    claim = Claim.of(body.user_id, body.email)
    try:
        result = await widget.run(body.app_id, body.visitor_id, work, claim=claim)
    except HalError:
        metrics.identify_outcome("refused")
        raise
    metrics.identify_outcome(result.outcome)
    answer = IdentifyResponse(
        visitor_id=result.visitor_key,
        contact=contact_out(result.contact),
        active_company=optional_company_out(
            result.active_company, visible=result.active_company_visible
        ),
        company_ids=result.company_ids,
        session_token=result.session_token,
        warnings=list(result.warnings),
        stage=stage_out(result.stage, result.stage_mode, result.active_company),
    )
    content = encoded(answer)
    if result.repeat is not None and widget.caller.bearer is not None:
        kept = KeptAnswer(body.app_id, body.visitor_id, result.repeat, content, claim,
                          result.warnings, result.proven, result.outcome)  # fmt: skip
        request.app.state.repeat_answers.keep(await request.body(), widget.caller.bearer, kept)
    return json_response(content)  # IdentifyResponse, encoded once


async def _answer_again(request: Request, body: bytes) -> Response | None:
    """identify's answer kept for the same body and session token, if it still holds
    (services/repeat_answers.py); None: the call takes the usual path."""
    token = bearer_token(request.headers.get("authorization"))
    answers: RepeatAnswers = request.app.state.repeat_answers
    if token is None or (kept := answers.get(body, token)) is None:
        return None
    if not await widget_of(request).again(kept):
        answers.forget(body, token)
        return None
    answers.sent += 1
    metrics.identify_outcome(kept.outcome)
    return json_response(kept.answer)


class _IdentifyRoute(EncodedRoute):
    shortcut = staticmethod(_answer_again)


router.add_api_route(
    "/identify",
    identify_route,
    methods=["POST"],
    response_model=IdentifyResponse,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
    route_class_override=_IdentifyRoute,
)


@router.post(
    "/set-properties",
    response_model=SetPropertiesResponse,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def set_properties_route(
    body: SetPropertiesRequest, request: Request
) -> SetPropertiesResponse:
    """Merge properties into the visitor's contact (or keep them until identify)."""
    result = await _in_transaction(set_properties, body, request)
    return SetPropertiesResponse(
        visitor_id=result.visitor_key,
        contact=contact_out(result.contact) if result.contact else None,
        properties=result.properties,
        warnings=result.warnings,
    )


@router.post(
    "/track",
    response_model=TrackResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def track_route(body: TrackRequest, request: Request) -> TrackResponse:
    """Record a point-in-time milestone on the contact or its company."""
    result = await _in_transaction(track, body, request)
    if result.event is None:
        return TrackResponse(event=EventRef(id=result.event_row_id), duplicate=True)
    return TrackResponse(event=result.event, duplicate=False)


@router.post(
    "/set-stage",
    response_model=SetStageResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def set_stage_route(body: SetStageRequest, request: Request) -> SetStageResponse:
    """Write the company's CRM stage under the stage mode."""
    result = await _in_transaction(set_stage, body, request)
    stage = stage_out(result.decision, result.mode, result.company)
    assert stage is not None
    return SetStageResponse(company=company_out(result.company), stage=stage)


@router.post(
    "/set-deal",
    response_model=SetDealResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def set_deal_route(body: SetDealRequest, request: Request) -> SetDealResponse:
    """Create or update a deal of the company."""
    result = await _in_transaction(set_deal, body, request)
    return SetDealResponse(
        company=company_out(result.company),
        deal=deal_out(result.deal),
        created=result.created,
        changed=result.changed,
    )


@router.post(
    "/messages",
    response_model=WidgetMessageResponse,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def post_message_route(body: WidgetMessageRequest, request: Request) -> WidgetMessageResponse:
    """Append a message to the visitor's open conversation (created on first message)."""
    conversation, message = await _in_transaction(post_widget_message, body, request)
    thread = conversation_out(conversation, [message])
    return WidgetMessageResponse(conversation=thread, message=message_out(message))


@router.get(
    "/messages",
    response_model=WidgetMessagesResponse,
    responses=error_responses(401, 403, 404, 422, 429),
    openapi_extra=WIDGET_SESSION_SECURITY,
)
async def read_messages_route(
    app_id: Annotated[str, Query(min_length=1, max_length=255)],
    visitor_id: Annotated[str, Query(min_length=1, max_length=255)],
    request: Request,
) -> WidgetMessagesResponse:
    """The visitor's conversation with agent replies, and the others it may read."""
    widget = widget_of(request)
    limits = widget.settings.limits
    current, threads = await widget.run(
        app_id,
        visitor_id,
        lambda tx, caller: read_widget_messages(
            tx, app_id=app_id, visitor_id=visitor_id, caller=caller, limits=limits
        ),
    )
    return WidgetMessagesResponse(
        conversation=conversation_out(current.conversation, current.messages) if current else None,
        conversations=[conversation_out(t.conversation, t.messages) for t in threads],
    )


echo_router = APIRouter(prefix="/api/widget", tags=["bench"], route_class=EncodedRoute)


@echo_router.post("/echo", include_in_schema=False)
async def echo_route(body: dict[str, Any]) -> dict[str, Any]:
    """The benchmark ceiling: the same middleware, JSON parsing and validation, no database."""
    return body

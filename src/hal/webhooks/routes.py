"""Admin API under /api/projects/{app_id}/webhooks: endpoints, their secret, the delivery log,
retry and replay (README "Webhooks"), with a token from `hal tokens create --admin`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Response

from hal.api.body import StrictJSONRoute
from hal.api.deps import AdminProjectDep, DatabaseDep, SettingsDep, TokenActorDep
from hal.api.errors import error_responses
from hal.db.models import WebhookEndpoint
from hal.services.paging import MAX_ID, MAX_PAGE
from hal.webhooks import endpoints as webhooks
from hal.webhooks.rules import webhook_id
from hal.webhooks.schemas import (
    DeliveryStatus,
    ReplayOut,
    ReplayRequest,
    RotatedWebhookSecretOut,
    WebhookAttemptOut,
    WebhookEndpointCreate,
    WebhookEndpointCreated,
    WebhookEndpointList,
    WebhookEndpointOut,
    WebhookEndpointPatch,
    WebhookMessageOut,
    WebhookMessagePage,
)

router = APIRouter(
    prefix="/api/projects/{app_id}/webhooks",
    tags=["webhooks"],
    route_class=StrictJSONRoute,
    responses=error_responses(400, 401, 403, 404, 413, 415, 422),
)

EndpointId = Annotated[int, Path(ge=1, le=MAX_ID)]
MessageId = Annotated[int, Path(ge=1, le=MAX_ID)]


def endpoint_out(endpoint: WebhookEndpoint) -> WebhookEndpointOut:
    return WebhookEndpointOut(
        id=endpoint.id,
        url=endpoint.url,
        events=endpoint.events,
        enabled=endpoint.enabled,
        disabled_reason=endpoint.disabled_reason,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
        created_at=endpoint.created_at,
    )


def delivery_out(delivery: webhooks.Delivery) -> WebhookMessageOut:
    message = delivery.message
    return WebhookMessageOut(
        id=message.id,
        webhook_id=webhook_id(message.id),
        type=message.type,
        change_id=message.change_id,
        status=message.status,
        next_attempt_at=message.next_attempt_at,
        created_at=message.created_at,
        payload=message.payload,
        attempts=[
            WebhookAttemptOut(
                attempted_at=attempt.attempted_at,
                status_code=attempt.status_code,
                error=attempt.error,
                duration_ms=attempt.duration_ms,
            )
            for attempt in delivery.attempts
        ],
    )


@router.post("", status_code=201, response_model=WebhookEndpointCreated)
async def create_endpoint(
    body: WebhookEndpointCreate,
    project: AdminProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: TokenActorDep,
) -> WebhookEndpointCreated:
    """Add an endpoint; its secret is shown this once. It receives changes from now on."""
    endpoint = await webhooks.create_endpoint(
        db=db,
        project_id=project.id,
        url=body.url,
        events=body.events,
        allow_private=settings.webhooks_allow_private,
        actor=actor,
    )
    return WebhookEndpointCreated(**endpoint_out(endpoint).model_dump(), secret=endpoint.secret)


@router.get("", response_model=WebhookEndpointList)
async def list_endpoints(project: AdminProjectDep, db: DatabaseDep) -> WebhookEndpointList:
    """The project's endpoints (never their secrets)."""
    found = await db.transaction(
        lambda s: webhooks.list_endpoints(session=s, project_id=project.id)
    )
    return WebhookEndpointList(items=[endpoint_out(endpoint) for endpoint in found])


@router.get("/{endpoint_id}", response_model=WebhookEndpointOut)
async def get_endpoint(
    endpoint_id: EndpointId, project: AdminProjectDep, db: DatabaseDep
) -> WebhookEndpointOut:
    """One endpoint."""
    endpoint = await db.transaction(
        lambda s: webhooks.get_endpoint(session=s, project_id=project.id, endpoint_id=endpoint_id)
    )
    return endpoint_out(endpoint)


@router.patch("/{endpoint_id}", response_model=WebhookEndpointOut)
async def patch_endpoint(
    endpoint_id: EndpointId,
    body: WebhookEndpointPatch,
    project: AdminProjectDep,
    db: DatabaseDep,
    settings: SettingsDep,
    actor: TokenActorDep,
) -> WebhookEndpointOut:
    """Change the URL or the event types; disable, or enable again (clears the reason)."""
    endpoint = await webhooks.update_endpoint(
        db=db,
        project_id=project.id,
        endpoint_id=endpoint_id,
        changes=webhooks.EndpointChanges(**body.model_dump(exclude_unset=True)),
        allow_private=settings.webhooks_allow_private,
        actor=actor,
    )
    return endpoint_out(endpoint)


@router.delete("/{endpoint_id}", status_code=204, response_class=Response)
async def delete_endpoint(
    endpoint_id: EndpointId, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> None:
    """Remove the endpoint and its delivery log."""
    await db.transaction(
        lambda s: webhooks.delete_endpoint(
            session=s, project_id=project.id, endpoint_id=endpoint_id, actor=actor
        )
    )


@router.post("/{endpoint_id}/rotate-secret", response_model=RotatedWebhookSecretOut)
async def rotate_secret(
    endpoint_id: EndpointId, project: AdminProjectDep, db: DatabaseDep, actor: TokenActorDep
) -> RotatedWebhookSecretOut:
    """A new secret, shown once; for 24 h deliveries carry signatures by both."""
    endpoint = await db.transaction(
        lambda s: webhooks.rotate_endpoint_secret(
            session=s, project_id=project.id, endpoint_id=endpoint_id, actor=actor
        )
    )
    assert endpoint.previous_secret_expires_at is not None
    return RotatedWebhookSecretOut(
        id=endpoint.id,
        secret=endpoint.secret,
        previous_secret_expires_at=endpoint.previous_secret_expires_at,
    )


@router.post(
    "/{endpoint_id}/test",
    status_code=202,
    response_model=WebhookMessageOut,
    responses=error_responses(409),
)
async def send_test(
    endpoint_id: EndpointId, project: AdminProjectDep, db: DatabaseDep
) -> WebhookMessageOut:
    """Queue a `webhook.test` message; its attempts show in the delivery log."""
    message = await db.transaction(
        lambda s: webhooks.send_test_message(
            session=s, project_id=project.id, endpoint_id=endpoint_id
        )
    )
    return delivery_out(webhooks.Delivery(message, []))


@router.get("/{endpoint_id}/deliveries", response_model=WebhookMessagePage)
async def list_deliveries(
    endpoint_id: EndpointId,
    project: AdminProjectDep,
    db: DatabaseDep,
    status: DeliveryStatus | None = None,
    cursor: Annotated[
        str | None, Query(max_length=64, description="next_cursor of the last page")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
) -> WebhookMessagePage:
    """Messages newest first, each with its attempts (time, HTTP status or error, duration)."""
    page = await db.transaction(
        lambda s: webhooks.list_deliveries(
            session=s,
            project_id=project.id,
            endpoint_id=endpoint_id,
            status=status,
            cursor=cursor,
            limit=limit,
        )
    )
    return WebhookMessagePage(
        items=[delivery_out(item) for item in page.items], next_cursor=page.next_cursor
    )


@router.post(
    "/{endpoint_id}/deliveries/{message_id}/retry",
    status_code=202,
    response_model=WebhookMessageOut,
    responses=error_responses(409),
)
async def retry_delivery(
    endpoint_id: EndpointId, message_id: MessageId, project: AdminProjectDep, db: DatabaseDep
) -> WebhookMessageOut:
    """Send a message again now (same `webhook-id`, a fresh retry schedule)."""
    delivery = await db.transaction(
        lambda s: webhooks.retry_message(
            session=s, project_id=project.id, endpoint_id=endpoint_id, message_id=message_id
        )
    )
    return delivery_out(delivery)


@router.post(
    "/{endpoint_id}/replay",
    status_code=202,
    response_model=ReplayOut,
    responses=error_responses(409),
)
async def replay(
    endpoint_id: EndpointId, body: ReplayRequest, project: AdminProjectDep, db: DatabaseDep
) -> ReplayOut:
    """Deliver again every change the endpoint subscribes to since `since`."""
    count = await db.transaction(
        lambda s: webhooks.replay(
            session=s, project_id=project.id, endpoint_id=endpoint_id, since=body.since
        )
    )
    return ReplayOut(messages=count)

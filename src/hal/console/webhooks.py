"""The console's webhooks screens: the endpoints with their event types and state; create (the
signing secret shown once), edit, disable or enable, rotate the secret, send a test, remove;
each endpoint's delivery log with its attempts, retry one, replay since a time."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hal.api.deps import DatabaseDep, SettingsDep
from hal.api.errors import status_for
from hal.console.base import (
    AdminDep,
    CsrfField,
    act,
    actor,
    back_to,
    on_form,
    render,
    router,
    validated,
)
from hal.domain.errors import HalError
from hal.inbox.session import SignedIn
from hal.webhooks import endpoints as webhooks
from hal.webhooks.routes import EndpointId, MessageId
from hal.webhooks.rules import DELIVERED_TYPES, OPT_IN_TYPES
from hal.webhooks.schemas import (
    DeliveryStatus,
    ReplayRequest,
    WebhookEndpointCreate,
    WebhookEndpointPatch,
)

Url = Annotated[str, Form(max_length=4096)]
Events = Annotated[list[str], Form(max_length=len(DELIVERED_TYPES) + 1)]
DELIVERY_PAGE = 25
NOTICES = {
    "test": "A webhook.test message is queued; its attempts show in the delivery log below.",
    "retry": "The message is queued again; its next attempt shows below.",
    "enabled": "The endpoint is enabled; its backlog follows.",
    "disabled": "The endpoint is disabled; nothing is sent to it until it is enabled.",
}
_LOCAL_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?$")


def _choices() -> dict[str, Any]:
    return {"event_types": list(DELIVERED_TYPES), "opt_in": sorted(OPT_IN_TYPES)}


async def _list_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    found = await db.transaction(
        lambda s: webhooks.list_endpoints(session=s, project_id=login.project.id)
    )
    return render(request, "admin/webhooks.html", login, status=status, errors=errors,
                  title="Webhooks", current="/admin/webhooks", endpoints=found,
                  **_choices(), **context)  # fmt: skip


@router.get("/webhooks")
async def webhooks_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _list_page(request, login, db)


@router.post("/webhooks")
async def create_endpoint(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    url: Url,
    events: Events = [],  # noqa: B006 (FastAPI copies a form's default)
    csrf: CsrfField = None,
) -> Response:
    """POST /webhooks; the new endpoint's secret is shown on this page, once."""
    submitted = {"url": url.strip(), "events": events}

    async def create() -> Any:
        body = validated(WebhookEndpointCreate, submitted)
        return await webhooks.create_endpoint(
            db=db, project_id=login.project.id, url=body.url, events=body.events,
            allow_private=settings.webhooks_allow_private, actor=actor(login),
        )  # fmt: skip

    async def shown(endpoint: Any) -> Response:
        return await _list_page(request, login, db, created=endpoint)

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _list_page(request, login, db, status=status, submitted=submitted,
                                errors=on_form(errors, "url", "events"))  # fmt: skip

    return await act(login, csrf, create, done=shown, failed=failed)


# --- one endpoint and its delivery log ------------------------------------------------------


async def _endpoint_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    endpoint_id: int,
    *,
    wanted: DeliveryStatus | None = None,
    cursor: str | None = None,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    """GET /webhooks/{id} and its /deliveries (newest first, by status, paged by cursor)."""

    async def load(s: Any) -> tuple[Any, webhooks.DeliveryPage]:
        endpoint = await webhooks.get_endpoint(
            session=s, project_id=login.project.id, endpoint_id=endpoint_id
        )
        page = await webhooks.list_deliveries(
            session=s, project_id=login.project.id, endpoint_id=endpoint_id,
            status=wanted, cursor=cursor, limit=DELIVERY_PAGE,
        )  # fmt: skip
        return endpoint, page

    try:
        endpoint, deliveries = await db.transaction(load)
    except HalError as refused:  # no such endpoint, or a cursor this page did not give
        return await _list_page(request, login, db, status=status_for(refused),
                                errors={"form": refused.message})  # fmt: skip
    notice = NOTICES.get(request.query_params.get("done", ""))
    replayed = request.query_params.get("replayed", "")
    if replayed.isdigit():
        notice = f"{replayed} messages are queued again for this endpoint."
    return render(request, "admin/webhook.html", login, status=status, errors=errors,
                  title=f"Webhook endpoint {endpoint.id}", current="/admin/webhooks",
                  endpoint=endpoint, deliveries=deliveries, status_filter=wanted,
                  notice=notice, **_choices(), **context)  # fmt: skip


@router.get("/webhooks/{endpoint_id}")
async def endpoint_page(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    status: Annotated[DeliveryStatus | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    return await _endpoint_page(request, login, db, endpoint_id, wanted=status, cursor=cursor)


def _failed_on(
    request: Request, login: SignedIn, db: DatabaseDep, endpoint_id: int, *fields: str
) -> Callable[[dict[str, str], int], Awaitable[Response]]:
    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _endpoint_page(request, login, db, endpoint_id, status=status,
                                    errors=on_form(errors, *fields))  # fmt: skip

    return failed


async def _patch(
    db: DatabaseDep,
    settings: SettingsDep,
    login: SignedIn,
    endpoint_id: int,
    wanted: dict[str, Any],
) -> Any:
    """PATCH /webhooks/{id}: the same body model and the same service call."""
    body = validated(WebhookEndpointPatch, wanted)
    return await webhooks.update_endpoint(
        db=db, project_id=login.project.id, endpoint_id=endpoint_id,
        changes=webhooks.EndpointChanges(**body.model_dump(exclude_unset=True)),
        allow_private=settings.webhooks_allow_private, actor=actor(login),
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}")
async def edit_endpoint(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    url: Url,
    events: Events = [],  # noqa: B006
    csrf: CsrfField = None,
) -> Response:
    wanted = {"url": url.strip(), "events": events}
    return await act(
        login, csrf, lambda: _patch(db, settings, login, endpoint_id, wanted),
        done=back_to(f"/admin/webhooks/{endpoint_id}?saved=1"),
        failed=_failed_on(request, login, db, endpoint_id, "url", "events"),
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}/enabled")
async def enable_endpoint(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    enabled: Annotated[str, Form(max_length=8)],
    csrf: CsrfField = None,
) -> Response:
    """Disable, or enable again (which clears the reason it was disabled)."""
    wanted = {"enabled": {"true": True, "false": False}.get(enabled, enabled)}
    done = "enabled" if wanted["enabled"] is True else "disabled"
    return await act(
        login, csrf, lambda: _patch(db, settings, login, endpoint_id, wanted),
        done=back_to(f"/admin/webhooks/{endpoint_id}?done={done}"),
        failed=_failed_on(request, login, db, endpoint_id),
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}/rotate")
async def rotate_secret(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    """POST /webhooks/{id}/rotate-secret; the new secret is shown on this page, once."""

    async def rotate() -> Any:
        return await db.transaction(
            lambda s: webhooks.rotate_endpoint_secret(
                session=s, project_id=login.project.id, endpoint_id=endpoint_id,
                actor=actor(login),
            )
        )  # fmt: skip

    async def shown(endpoint: Any) -> Response:
        return await _endpoint_page(request, login, db, endpoint_id, new_secret=endpoint.secret)

    return await act(
        login, csrf, rotate, done=shown, failed=_failed_on(request, login, db, endpoint_id)
    )


@router.post("/webhooks/{endpoint_id}/test")
async def send_test(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    """POST /webhooks/{id}/test."""

    async def send() -> Any:
        return await db.transaction(
            lambda s: webhooks.send_test_message(
                session=s, project_id=login.project.id, endpoint_id=endpoint_id
            )
        )

    return await act(
        login, csrf, send, done=back_to(f"/admin/webhooks/{endpoint_id}?done=test"),
        failed=_failed_on(request, login, db, endpoint_id),
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}/deliveries/{message_id}/retry")
async def retry_delivery(
    request: Request,
    endpoint_id: EndpointId,
    message_id: MessageId,
    login: AdminDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    """POST /webhooks/{id}/deliveries/{message_id}/retry."""

    async def retry() -> Any:
        return await db.transaction(
            lambda s: webhooks.retry_message(
                session=s, project_id=login.project.id, endpoint_id=endpoint_id,
                message_id=message_id,
            )
        )  # fmt: skip

    return await act(
        login, csrf, retry, done=back_to(f"/admin/webhooks/{endpoint_id}?done=retry"),
        failed=_failed_on(request, login, db, endpoint_id),
    )  # fmt: skip


def _aware(moment: str) -> str:
    """A datetime-local box's value (no zone) read as UTC, as the page says."""
    moment = moment.strip()
    return moment + "Z" if _LOCAL_TIME.match(moment) else moment


@router.post("/webhooks/{endpoint_id}/replay")
async def replay(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    since: Annotated[str, Form(max_length=64)] = "",
    csrf: CsrfField = None,
) -> Response:
    """POST /webhooks/{id}/replay."""

    async def again() -> int:
        body = validated(ReplayRequest, {"since": _aware(since)})
        return await db.transaction(
            lambda s: webhooks.replay(
                session=s, project_id=login.project.id, endpoint_id=endpoint_id,
                since=body.since,
            )
        )  # fmt: skip

    return await act(
        login, csrf, again,
        done=lambda count: RedirectResponse(
            f"/admin/webhooks/{endpoint_id}?replayed={count}", status_code=303
        ),
        failed=_failed_on(request, login, db, endpoint_id, "since"),
    )  # fmt: skip


@router.post("/webhooks/{endpoint_id}/remove")
async def remove_endpoint(
    request: Request,
    endpoint_id: EndpointId,
    login: AdminDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    """DELETE /webhooks/{id}: the endpoint and its delivery log."""

    async def remove() -> None:
        await db.transaction(
            lambda s: webhooks.delete_endpoint(
                session=s, project_id=login.project.id, endpoint_id=endpoint_id,
                actor=actor(login),
            )
        )  # fmt: skip

    return await act(
        login, csrf, remove, done=back_to("/admin/webhooks"),
        failed=_failed_on(request, login, db, endpoint_id),
    )  # fmt: skip

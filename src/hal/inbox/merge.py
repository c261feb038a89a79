"""The inbox's merge action on a contact page: find the duplicate, preview what would move,
confirm. The same use case as `POST /api/projects/{app_id}/contacts/merge`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hal.api.deps import DatabaseDep, RowId
from hal.api.presenters import contact_summary
from hal.db.engine import Database
from hal.domain.errors import HalError
from hal.inbox.routes import AgentDep, CsrfField, _forbidden, _page
from hal.inbox.session import csrf_ok
from hal.services import merge, team
from hal.services.audit import Actor

router = APIRouter(prefix="/inbox", include_in_schema=False)


def inbox_actor(login: Any) -> Actor:
    return Actor("agent", login.agent.id)


FromId = Annotated[int | None, Query(alias="from", ge=1, le=team.MAX_ID)]


async def _merge_page(
    request: Request,
    db: Database,
    login: Any,
    into_id: int,
    *,
    q: str | None,
    from_id: int | None,
    refusal: str | None = None,
) -> HTMLResponse:
    screen = await merge.merge_screen(
        db,
        project=login.project,
        into_id=into_id,
        q=q,
        from_id=from_id,
        actor=inbox_actor(login),
    )
    preview = screen.preview
    return _page(
        request,
        "merge.html",
        login,
        into=contact_summary(screen.into),
        q=q or "",
        found=[contact_summary(c) for c in screen.found],
        from_id=from_id,
        preview=preview,
        after=contact_summary(preview.into) if preview else None,
        error=refusal or screen.refusal,
    )


@router.get("/contacts/{contact_id}/merge")
async def merge_page(
    request: Request,
    contact_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    q: Annotated[str | None, Query(max_length=255)] = None,
    from_id: FromId = None,
) -> HTMLResponse:
    """Pick the contact to merge into this one (search), then its preview and a confirm."""
    return await _merge_page(request, db, login, contact_id, q=q, from_id=from_id)


@router.post("/contacts/{contact_id}/merge")
async def confirm_merge(
    request: Request,
    contact_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    from_id: Annotated[int, Form(alias="from", ge=1, le=team.MAX_ID)],
    csrf: CsrfField = None,
    confirm_verified_pair: Annotated[bool, Form()] = False,
) -> Response:
    """Merge `from` into this contact, then show it."""
    if not csrf_ok(login, csrf):
        return _forbidden()
    try:
        await db.run(
            lambda tx: merge.merge_contacts(
                tx,
                project=login.project,
                from_id=from_id,
                into_id=contact_id,
                preview=False,
                actor=inbox_actor(login),
                confirm_verified_pair=confirm_verified_pair,
            )
        )
    except HalError as exc:
        page = await _merge_page(
            request, db, login, contact_id, q=None, from_id=None, refusal=exc.message
        )
        page.status_code = 409
        return page
    return RedirectResponse(f"/inbox/contacts/{contact_id}", status_code=303)

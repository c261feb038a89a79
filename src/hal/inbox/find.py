"""The inbox finds people (README "The inbox finds people"): the contacts and companies pages
with their filter builder, the builder's live count, and saving or deleting a view. The
conversation list's filter is on the inbox's own page (routes.py)."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from hal.api.deps import DatabaseDep, RowId
from hal.domain.errors import Conflict, InvalidInput
from hal.domain.search import Kind
from hal.inbox.routes import (
    AgentDep,
    CsrfField,
    CursorParam,
    FilterParam,
    ViewParam,
    _forbidden,
    _page,
    conversation_list,
    finder_context,
    finder_url,
    problem_status,
)
from hal.inbox.session import SignedIn, csrf_ok
from hal.services import finder
from hal.services.audit import Actor

router = APIRouter(prefix="/inbox", include_in_schema=False)
_PATHS = {Kind.CONTACTS: "/inbox/contacts", Kind.COMPANIES: "/inbox/companies",
          Kind.CONVERSATIONS: "/inbox"}  # fmt: skip


async def _finder_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    kind: Kind,
    *,
    filter_text: str | None,
    view_id: int | None,
    cursor: str | None,
    refusal: str | None = None,
) -> HTMLResponse:
    if kind is Kind.CONVERSATIONS:
        listed = await conversation_list(db, login, status=None, filter_text=filter_text,
                                         view_id=view_id, cursor=cursor)  # fmt: skip
        page = _page(request, "inbox.html", login, thread=None, refusal=refusal, **listed)
        page.status_code = problem_status(listed["finder"])
        return page
    found = await db.run(
        lambda tx: finder.find(
            tx, app_id=login.project.app_id, kind=kind, filter_text=filter_text,
            view_id=view_id, cursor=cursor,
        )
    )  # fmt: skip
    context = finder_context(
        found, path=_PATHS[kind], filter_text=filter_text, view_id=view_id, cursor=cursor
    )
    page = _page(request, f"{kind.value}.html", login, finder=context, refusal=refusal,
                 companies=found.companies)  # fmt: skip
    page.status_code = problem_status(context)
    return page


@router.get("/contacts")
async def contacts_page(
    request: Request,
    login: AgentDep,
    db: DatabaseDep,
    filter_text: FilterParam = None,
    view_id: ViewParam = None,
    cursor: CursorParam = None,
) -> HTMLResponse:
    return await _finder_page(request, login, db, Kind.CONTACTS, filter_text=filter_text,
                              view_id=view_id, cursor=cursor)  # fmt: skip


@router.get("/companies")
async def companies_page(
    request: Request,
    login: AgentDep,
    db: DatabaseDep,
    filter_text: FilterParam = None,
    view_id: ViewParam = None,
    cursor: CursorParam = None,
) -> HTMLResponse:
    return await _finder_page(request, login, db, Kind.COMPANIES, filter_text=filter_text,
                              view_id=view_id, cursor=cursor)  # fmt: skip


@router.get("/count.json")
async def count_json(
    login: AgentDep,
    db: DatabaseDep,
    kind: Kind,
    filter_text: FilterParam = None,
    status: Literal["open", "closed"] | None = None,
) -> JSONResponse:
    """The builder's live count: `{"total", "total_exact"}`, or 422 `invalid_query`."""
    total, exact = await db.run(
        lambda tx: finder.count(
            tx, app_id=login.project.app_id, kind=kind, filter_text=filter_text,
            status=status if kind is Kind.CONVERSATIONS else None,
        )
    )  # fmt: skip
    return JSONResponse({"total": total, "total_exact": exact})


@router.post("/views")
async def save_view(
    request: Request,
    login: AgentDep,
    db: DatabaseDep,
    kind: Annotated[Kind, Form()],
    name: Annotated[str, Form(max_length=255)],
    filter_text: Annotated[str | None, Form(alias="filter", max_length=20_000)] = None,
    csrf: CsrfField = None,
) -> Response:
    """Save the page's filter as a view, then open it; a name taken or a filter that cannot
    be read shows the page again with the reason."""
    if not csrf_ok(login, csrf):
        return _forbidden()
    try:
        saved = await db.run(
            lambda tx: finder.save_view(
                tx, app_id=login.project.app_id, kind=kind, name=name,
                filter_text=filter_text or None, actor=Actor("agent", login.agent.id),
            )
        )  # fmt: skip
    except (Conflict, InvalidInput) as refused:
        page = await _finder_page(request, login, db, kind, filter_text=filter_text or None,
                                  view_id=None, cursor=None, refusal=refused.message)  # fmt: skip
        page.status_code = 409 if isinstance(refused, Conflict) else 422
        return page
    return RedirectResponse(finder_url(_PATHS[kind], view=saved.view.id), status_code=303)


@router.post("/views/{view_id}/delete")
async def delete_view(
    view_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    if not csrf_ok(login, csrf):
        return _forbidden()
    kind = await db.run(
        lambda tx: finder.delete_view(
            tx, app_id=login.project.app_id, view_id=view_id, actor=Actor("agent", login.agent.id)
        )
    )
    return RedirectResponse(_PATHS[kind], status_code=303)


__all__ = ["router"]

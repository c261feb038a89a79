"""The web inbox for agents: server-rendered pages, a little JavaScript for live updates."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path as FilePath
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import APIRouter, Depends, Form, Header, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from hal.api.deps import DatabaseDep, RowId, SettingsDep
from hal.api.errors import error_response
from hal.api.presenters import conversation_summary_out, message_out
from hal.api.stream import last_event_id_of, open_stream
from hal.db.engine import Database, Tx
from hal.domain.search import Kind
from hal.inbox.session import (
    LoginRequired,
    SignedIn,
    csrf_ok,
    current_agent,
    end_session,
    log_in,
)
from hal.services import conversations, finder, team
from hal.services.audit import Actor

TEMPLATES = Jinja2Templates(directory=FilePath(__file__).parent.parent / "web" / "templates")
router = APIRouter(prefix="/inbox", include_in_schema=False)
AgentDep = Annotated[SignedIn, Depends(current_agent)]
CsrfField = Annotated[str | None, Form(alias="csrf_token")]
# A filter in the URL: the search language as URL-encoded JSON (README "Search").
FilterParam = Annotated[str | None, Query(alias="filter", max_length=20_000)]
ViewParam = Annotated[int | None, Query(alias="view", ge=1, le=team.MAX_ID)]
CursorParam = Annotated[str | None, Query(max_length=1000)]


def segment(value: object) -> str:
    """One URL path segment: a company id such as `../contacts/1` cannot lead elsewhere."""
    return quote(str(value), safe="")


TEMPLATES.env.filters["segment"] = segment


def _page(request: Request, template: str, login: SignedIn | None, **context: Any) -> HTMLResponse:
    return TEMPLATES.TemplateResponse(request, template, {"session": login, **context})


def _forbidden() -> HTMLResponse:
    return HTMLResponse("The form expired; go back and try again.", status_code=403)


async def _form_action(
    db: Database,
    login: SignedIn,
    csrf: str | None,
    work: Callable[[Tx], Awaitable[object]],
    then: str,
) -> Response:
    """A form post: CSRF token checked, the write in one transaction, then back to a page."""
    if not csrf_ok(login, csrf):
        return _forbidden()
    await db.run(work)
    return RedirectResponse(then, status_code=303)


@router.get("/login")
async def login_form(request: Request) -> HTMLResponse:
    return _page(request, "login.html", None, error=None, email="")


@router.post("/login")
async def sign_in(
    request: Request,
    email: Annotated[str, Form(max_length=255)],
    password: Annotated[str, Form(max_length=1024)],
    workspace: Annotated[str | None, Form(max_length=255)] = None,
) -> Response:
    response = RedirectResponse("/inbox", status_code=303)
    outcome = await log_in(request, response, email=email, password=password, workspace=workspace)
    if outcome.retry_after is not None:
        error = f"Too many failed logins. Try again in {-(-outcome.retry_after // 60)} min."
        page = _page(request, "login.html", None, error=error, email=email)
        page.status_code = 429
        page.headers["Retry-After"] = str(outcome.retry_after)
        return page
    if not outcome.signed_in:
        page = _page(request, "login.html", None, error="Wrong email or password.", email=email)
        page.status_code = 401
        return page
    return response


@router.post("/logout")
async def logout(request: Request, login: AgentDep, csrf: CsrfField = None) -> Response:
    if not csrf_ok(login, csrf):
        return _forbidden()
    response = RedirectResponse("/inbox/login", status_code=303)
    await end_session(request, response, login)
    return response


async def _list(db: Database, login: SignedIn, status: str | None) -> list[Any]:
    page = await db.transaction(
        lambda s: team.list_conversations(
            session=s, project=login.project, status=status, cursor=None, limit=100
        )
    )
    return [conversation_summary_out(item) for item in page.items]


def _status(value: str | None, *, filtered: bool = False) -> str | None:
    """The list's status tab: open unless asked, or all for a filter or a view."""
    if value in {"open", "closed"}:
        return value
    return None if value == "all" or (value is None and filtered) else "open"


def finder_url(path: str, **params: object) -> str:
    """A finder screen's URL with its filter, view, status and cursor (those given)."""
    given = {name: value for name, value in params.items() if value is not None}
    return f"{path}?{urlencode(given)}" if given else path


def finder_context(
    found: finder.Found,
    *,
    path: str,
    filter_text: str | None,
    view_id: int | None,
    cursor: str | None,
    status: str | None = None,
) -> dict[str, Any]:
    """What the finder's templates need: the builder's fields and filter, the count, the
    views, and the links to the next and the first page."""
    state: dict[str, object] = {}
    if view_id is not None:
        state["view"] = view_id
    elif filter_text is not None:
        state["filter"] = filter_text
    if status is not None:
        state["status"] = status
    page = found.page
    return {
        "kind": found.kind.value,
        "path": path,
        "fields": [choice.as_json() for choice in found.choices],
        "query": found.query,
        "applied": found.query is not None,
        "page": page,
        "problem": found.problem,
        "views": found.views,
        "view": found.view,
        "state": state,
        "here": finder_url(path, **state, cursor=cursor),
        "params": urlencode({**state, **({"cursor": cursor} if cursor else {})}),
        "next_url": finder_url(path, **state, cursor=page.next_cursor)
        if page and page.next_cursor
        else None,
        "first_url": finder_url(path, **state) if cursor else None,
    }


def problem_status(context: dict[str, Any]) -> int:
    """A finder screen whose filter could not be read answers 422; a missing view, 404."""
    if context["problem"] is None:
        return 200
    return 404 if "view" in context["state"] and context["view"] is None else 422


async def conversation_list(
    db: Database,
    login: SignedIn,
    *,
    status: str | None,
    filter_text: str | None,
    view_id: int | None,
    cursor: str | None,
) -> dict[str, Any]:
    """The conversation list of the inbox's pages, as the filter or the view says."""
    filtered = filter_text is not None or view_id is not None
    chosen = _status(status, filtered=filtered)
    found = await db.run(
        lambda tx: finder.find(
            tx, app_id=login.project.app_id, kind=Kind.CONVERSATIONS, filter_text=filter_text,
            view_id=view_id, status=chosen, cursor=cursor, limit=100,
        )
    )  # fmt: skip
    context = finder_context(
        found, path="/inbox", filter_text=filter_text, view_id=view_id, cursor=cursor,
        status=chosen or "all",
    )  # fmt: skip
    items = found.page.items if found.page else []
    unfiltered_state = {k: v for k, v in context["state"].items() if k != "status"}
    context["tabs"] = [
        (value, label, finder_url("/inbox", **unfiltered_state, status=value))
        for value, label in (("open", "Open"), ("closed", "Closed"), ("all", "All"))
    ]
    return {
        "conversations": [conversation_summary_out(item) for item in items],
        "status": chosen or "all",
        # Live updates redraw the first page of the whole list, not a filtered or later one.
        "live_list": not filtered and cursor is None,
        "finder": context,
    }


@router.get("")
async def inbox(
    request: Request,
    login: AgentDep,
    db: DatabaseDep,
    status: str | None = None,
    filter_text: FilterParam = None,
    view_id: ViewParam = None,
    cursor: CursorParam = None,
) -> HTMLResponse:
    listed = await conversation_list(
        db, login, status=status, filter_text=filter_text, view_id=view_id, cursor=cursor
    )
    page = _page(request, "inbox.html", login, thread=None, **listed)
    page.status_code = problem_status(listed["finder"])
    return page


@router.get("/stream")
async def stream(
    request: Request,
    login: AgentDep,
    db: DatabaseDep,
    last_event_id: Annotated[str | None, Header(alias="Last-Event-ID")] = None,
) -> Response:
    """The project's changes for the open inbox page (the browser resumes with Last-Event-ID),
    until the login session ends (logout, a new password, the agent's removal)."""
    after = last_event_id_of(last_event_id, None)

    async def still_signed_in() -> bool:
        try:
            return (await current_agent(request)).id == login.id
        except LoginRequired:
            return False

    return open_stream(
        request, db=db, project_id=login.project.id, after=after, still_authorized=still_signed_in
    )


@router.get("/conversations.json")
async def conversations_json(
    login: AgentDep, db: DatabaseDep, status: str | None = None
) -> JSONResponse:
    items = await _list(db, login, _status(status))
    return JSONResponse([item.model_dump(mode="json") for item in items])


async def _thread_context(db: Database, login: SignedIn, conversation_id: int) -> dict[str, Any]:
    thread = await db.transaction(
        lambda s: team.thread(
            session=s, project=login.project, conversation_id=conversation_id, with_contact=True
        )
    )
    return {
        "thread": conversation_summary_out(thread.summary),
        "messages": [message_out(m) for m in thread.messages],
        "detail": thread.contact,
    }


@router.get("/conversations/{conversation_id}")
async def conversation_page(
    request: Request,
    conversation_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    status: str | None = None,
    filter_text: FilterParam = None,
    view_id: ViewParam = None,
    cursor: CursorParam = None,
) -> HTMLResponse:
    context = await _thread_context(db, login, conversation_id)
    listed = await conversation_list(
        db, login, status=status, filter_text=filter_text, view_id=view_id, cursor=cursor
    )
    return _page(request, "inbox.html", login, **listed, **context)


@router.get("/conversations/{conversation_id}/messages.json")
async def messages_json(
    conversation_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    after: Annotated[int, Query(ge=0, le=team.MAX_ID)] = 0,
) -> JSONResponse:
    messages = await db.transaction(
        lambda s: conversations.messages_after(
            session=s, project=login.project, conversation_id=conversation_id, after=after
        )
    )
    return JSONResponse([message_out(m).model_dump(mode="json") for m in messages])


@router.post("/conversations/{conversation_id}/reply")
async def reply(
    conversation_id: RowId,
    login: AgentDep,
    db: DatabaseDep,
    body: Annotated[str, Form(max_length=10_000)],
    csrf: CsrfField = None,
) -> Response:
    return await _form_action(
        db,
        login,
        csrf,
        lambda tx: conversations.reply(
            tx,
            project=login.project,
            conversation_id=conversation_id,
            body=body,
            agent=login.agent,
        ),
        f"/inbox/conversations/{conversation_id}",
    )


@router.post("/conversations/{conversation_id}/{action}")
async def change_status(
    conversation_id: RowId,
    action: str,
    login: AgentDep,
    db: DatabaseDep,
    csrf: CsrfField = None,
) -> Response:
    if action not in {"close", "reopen"}:
        return _forbidden()
    status = "closed" if action == "close" else "open"
    return await _form_action(
        db,
        login,
        csrf,
        lambda tx: conversations.set_status(
            tx, project=login.project, conversation_id=conversation_id, status=status
        ),
        f"/inbox/conversations/{conversation_id}",
    )


@router.get("/contacts/{contact_id}")
async def contact_page(
    request: Request, contact_id: RowId, login: AgentDep, db: DatabaseDep
) -> HTMLResponse:
    detail = await db.transaction(
        lambda s: team.contact_detail(session=s, project=login.project, contact_id=contact_id)
    )
    threads = [conversation_summary_out(x) for x in detail.conversations]
    return _page(request, "contact.html", login, detail=detail, threads=threads)


@router.get("/companies/{company_id:path}")
async def company_page(
    request: Request, company_id: str, login: AgentDep, db: DatabaseDep
) -> HTMLResponse:
    detail = await db.transaction(
        lambda s: team.company_detail(
            session=s, project=login.project, company_id=company_id, contacts_limit=500
        )
    )
    return _page(request, "company.html", login, detail=detail, stages=login.project.stages)


@router.post("/companies/{company_id:path}/stage")
async def company_stage(
    company_id: str,
    login: AgentDep,
    db: DatabaseDep,
    settings: SettingsDep,
    stage: Annotated[str, Form(max_length=255)],
    csrf: CsrfField = None,
) -> Response:
    return await _form_action(
        db,
        login,
        csrf,
        lambda tx: team.agent_set_stage(
            tx,
            project=login.project,
            company_id=company_id,
            stage=stage,
            limits=settings.limits,
            actor=Actor("agent", login.agent.id),
        ),
        f"/inbox/companies/{segment(company_id)}",
    )


async def login_redirect(request: Request, exc: Exception) -> Response:
    if request.url.path.endswith(".json"):
        return error_response(401, "login_required", "log in again")
    return RedirectResponse("/inbox/login", status_code=303)


__all__ = ["LoginRequired", "login_redirect", "router"]

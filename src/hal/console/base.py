"""What every console screen shares: the admin's login (an `agent` gets 403), rendering with
the console's sections, and a form post that checks the CSRF token, runs one service call and
either redirects or shows the server's error next to its field."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path as FilePath
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from pydantic import BaseModel, ValidationError

from hal.api.errors import describe_validation, status_for
from hal.db.engine import Tx
from hal.domain.errors import HalError, InvalidInput
from hal.domain.projects import ProjectConfig
from hal.domain.roles import Role
from hal.inbox.session import SignedIn, csrf_ok, current_agent
from hal.services.audit import Actor

TEMPLATES = Jinja2Templates(directory=FilePath(__file__).parent.parent / "web" / "templates")
router = APIRouter(prefix="/admin", include_in_schema=False)
CsrfField = Annotated[str | None, Form(alias="csrf_token")]
M = TypeVar("M", bound=BaseModel)

SECTIONS = (
    ("/admin/settings", "Settings"),
    ("/admin/verification", "Identity verification"),
    ("/admin/installation", "Installation"),
    ("/admin/refusals", "Refusals"),
    ("/admin/agents", "Agents"),
    ("/admin/tokens", "API tokens"),
    ("/admin/webhooks", "Webhooks"),
    ("/admin/attributes", "Attributes"),
    ("/admin/views", "Views"),
    ("/admin/privacy", "Privacy"),
    ("/admin/audit", "Audit log"),
)


class AdminOnly(Exception):
    """A signed-in agent whose role is not admin asked for a console screen or action."""


async def admin_login(login: Annotated[SignedIn, Depends(current_agent)]) -> SignedIn:
    if login.agent.role != Role.ADMIN:
        raise AdminOnly
    return login


AdminDep = Annotated[SignedIn, Depends(admin_login)]


def actor(login: SignedIn) -> Actor:
    return Actor("agent", login.agent.id)


def render(
    request: Request,
    template: str,
    login: SignedIn,
    *,
    status: int = 200,
    errors: Mapping[str, str] | None = None,
    **context: Any,
) -> HTMLResponse:
    """A console screen; `errors` by form field (the server's refusal, shown next to it)."""
    page = TEMPLATES.TemplateResponse(
        request,
        template,
        {"session": login, "sections": SECTIONS, "errors": errors or {}, **context},
        status_code=status,
    )
    page.headers["Cache-Control"] = "no-store"  # secrets are shown once
    return page


def admins_only(request: Request, _: Exception) -> HTMLResponse:
    return HTMLResponse(
        "<!doctype html><title>Admins only</title><p>This page is for the project's admins."
        ' <a href="/inbox">Back to the inbox</a></p>',
        status_code=403,
    )


def form_field(error: HalError) -> str:
    """The form field an error names (`allowed_origins[2]` is the `allowed_origins` box)."""
    name = error.field or "form"
    return name.split("[", 1)[0].split(".", 1)[0]


def validated(model: type[M], data: Mapping[str, Any]) -> M:
    """A form's values checked by the admin API's own body model (its 422, as a refusal)."""
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        code, message, field = describe_validation(exc.errors())
        raise InvalidInput(code, message, field=field) from None


T = TypeVar("T")
Answer = Response | Awaitable[Response]


async def act(
    login: SignedIn,
    csrf: str | None,
    work: Callable[[], Awaitable[T]],
    *,
    done: Callable[[T], Answer],
    failed: Callable[[dict[str, str], int], Answer],
) -> Response:
    """A console form: the CSRF token checked, the admin API's service call run, then `done`
    (a redirect or a page) or `failed` with the error by field and the API's status."""
    if not csrf_ok(login, csrf):
        return HTMLResponse("The form expired; go back and try again.", status_code=403)
    try:
        result = await work()
    except HalError as exc:
        return await _answer(failed({form_field(exc): exc.message}, status_for(exc)))
    return await _answer(done(result))


async def _answer(made: Answer) -> Response:
    return await made if inspect.isawaitable(made) else made


def back_to(path: str) -> Callable[[object], Response]:
    return lambda _: RedirectResponse(path, status_code=303)


def on_form(errors: Mapping[str, str], *fields: str) -> dict[str, str]:
    """Errors by the form's own fields; one naming anything else (a path parameter, say) is
    shown above the form."""
    return {key if key in fields else "form": message for key, message in errors.items()}


def whole_number(text: str | None) -> int | str | None:
    """A number box's value as the API's JSON would carry it: blank is null, digits an
    integer, anything else stays text for the body model to refuse next to its field."""
    text = (text or "").strip()
    if not text:
        return None
    digits = text.removeprefix("-")
    return int(text) if digits.isdigit() and len(digits) < 19 else text


async def project_config(tx: Tx, login: SignedIn) -> ProjectConfig:
    """The signed-in project's settings as the services read them (the API routes' own)."""
    return await tx.project(login.project.app_id)


def lines(text: str | None) -> list[str]:
    """A textarea's entries, one per line (commas also separate), blanks left out."""
    return [item.strip() for item in (text or "").replace(",", "\n").splitlines() if item.strip()]


@router.get("")
async def console_home(_: AdminDep) -> Response:
    return RedirectResponse("/admin/settings", status_code=303)

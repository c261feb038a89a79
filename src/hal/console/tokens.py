"""The console's API tokens screen: each token's label, kind, created and last used; create one
(shown once) and revoke one."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, Response

from hal.api.deps import DatabaseDep, RowId
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
from hal.domain.projects import TokenKind
from hal.inbox.session import SignedIn
from hal.schemas.admin import TokenCreate
from hal.services import projects


async def _tokens_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    found = await db.transaction(
        lambda s: projects.list_api_tokens(session=s, app_id=login.project.app_id)
    )
    if request.query_params.get("revoked"):
        context.setdefault("notice", "The token is revoked: it answers 401 from now on.")
    return render(request, "admin/tokens.html", login, status=status, errors=errors,
                  title="API tokens", current="/admin/tokens", tokens=found,
                  kinds=list(TokenKind), **context)  # fmt: skip


@router.get("/tokens")
async def tokens_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _tokens_page(request, login, db)


@router.post("/tokens")
async def create_token(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    label: Annotated[str, Form(max_length=1024)] = "",
    kind: Annotated[str, Form(max_length=16)] = "team",
    csrf: CsrfField = None,
) -> Response:
    """POST /tokens; the token is shown on this page, once."""
    submitted = {"label": label.strip() or None, "kind": kind}

    async def create() -> projects.IssuedToken:
        body = validated(TokenCreate, submitted)
        return await db.transaction(
            lambda s: projects.create_api_token(
                session=s, app_id=login.project.app_id, kind=body.kind, label=body.label,
                actor=actor(login),
            )
        )  # fmt: skip

    async def shown(issued: projects.IssuedToken) -> Response:
        return await _tokens_page(request, login, db, issued=issued)

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _tokens_page(request, login, db, status=status, submitted=submitted,
                                  errors=on_form(errors, "label", "kind"))  # fmt: skip

    return await act(login, csrf, create, done=shown, failed=failed)


@router.post("/tokens/{token_id}/revoke")
async def revoke_token(
    request: Request, token_id: RowId, login: AdminDep, db: DatabaseDep, csrf: CsrfField = None
) -> Response:
    """DELETE /tokens/{token_id}: the token answers 401 from then on."""

    async def revoke() -> object:
        return await db.transaction(
            lambda s: projects.revoke_api_token(
                session=s, app_id=login.project.app_id, token_id=token_id, actor=actor(login)
            )
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _tokens_page(request, login, db, status=status, errors=on_form(errors))

    return await act(login, csrf, revoke, done=back_to("/admin/tokens?revoked=1"), failed=failed)

"""The console's privacy screen: retention settings, the suppression list with lifting, erasing
a person by email or user_id once the admin has typed it again, and a person's export."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from hal.api.deps import DatabaseDep
from hal.api.errors import status_for
from hal.api.privacy import export_contact
from hal.console.base import (
    AdminDep,
    CsrfField,
    act,
    actor,
    back_to,
    on_form,
    project_config,
    render,
    router,
    validated,
    whole_number,
)
from hal.console.project import update_settings
from hal.db.engine import Tx
from hal.domain.errors import InvalidInput, NotFound
from hal.domain.search import Kind
from hal.inbox.session import SignedIn
from hal.schemas.privacy import ErasureRequest
from hal.services import erasure, projects, search
from hal.services.suppression import lift_suppression, suppression_page

Short = Annotated[str, Form(max_length=1024)]
KEYS = (("email", "Email"), ("user_id", "User ID"))
RETENTION = ("event_retention_days", "conversation_retention_days")


async def _privacy_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    cursor: str | None = None,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    """The page, with GET /suppressions (newest first, paged by cursor)."""
    errors = dict(errors or {})
    try:
        suppressed = await db.run(
            lambda tx: suppression_page(tx, project_id=login.project.id, cursor=cursor, limit=50)
        )
    except InvalidInput as refused:  # a cursor this page did not give
        suppressed, status = None, status_for(refused)
        errors.setdefault("form", refused.message)
    erased = request.query_params.get("erased", "")
    if erased.isdigit():
        context.setdefault("notice", f"Contact {erased} is erased, with every copy of its data.")
    elif request.query_params.get("lifted"):
        context.setdefault("notice", "The suppression is lifted: the person may identify again.")
    return render(request, "admin/privacy.html", login, status=status, errors=errors,
                  title="Privacy", current="/admin/privacy", suppressed=suppressed, keys=KEYS,
                  project=projects.project_view(login.project), **context)  # fmt: skip


@router.get("/privacy")
async def privacy_page(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    cursor: Annotated[str | None, Query(max_length=64)] = None,
) -> HTMLResponse:
    return await _privacy_page(request, login, db, cursor=cursor)


@router.post("/privacy/retention")
async def save_retention(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    event_retention_days: Short = "",
    conversation_retention_days: Short = "",
    csrf: CsrfField = None,
) -> Response:
    """PATCH /settings with the two retention periods (blank: kept until erased)."""
    submitted = {"event_retention_days": event_retention_days,
                 "conversation_retention_days": conversation_retention_days}  # fmt: skip
    changes = {key: whole_number(value) or 0 for key, value in submitted.items()}

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _privacy_page(request, login, db, status=status, retention=submitted,
                                   errors=on_form(errors, *RETENTION))  # fmt: skip

    return await act(
        login, csrf, lambda: update_settings(db, login, changes),
        done=back_to("/admin/privacy?saved=1"), failed=failed,
    )  # fmt: skip


@router.post("/privacy/lift")
async def lift(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    hash: Annotated[str, Form(max_length=64)] = "",
    csrf: CsrfField = None,
) -> Response:
    """DELETE /suppressions/{hash}."""

    async def lift_it() -> int:
        return await db.run(
            lambda tx: lift_suppression(
                tx, project_id=login.project.id, hash=hash, actor=actor(login)
            )
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _privacy_page(request, login, db, status=status, errors=on_form(errors))

    return await act(login, csrf, lift_it, done=back_to("/admin/privacy?lifted=1"), failed=failed)


def _by_key(key: str, value: str) -> dict[str, str]:
    """The person's key as the API's body names it; a value's errors show next to its box."""
    if key not in dict(KEYS):
        raise InvalidInput("invalid_field", "find the person by email or user_id", field="key")
    return {key: value}


def _on_person_form(form: str, errors: dict[str, str]) -> dict[str, str]:
    """The erase and export forms' errors, each by its own form's fields (`erase-value`)."""
    named = {"value" if key in dict(KEYS) else key: message for key, message in errors.items()}
    placed = on_form(named, "key", "value", "confirm")
    return {key if key == "form" else f"{form}-{key}": message for key, message in placed.items()}


@router.post("/privacy/erase")
async def erase(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    key: Short = "email",
    value: Short = "",
    confirm: Short = "",
    suppress: Annotated[str | None, Form(max_length=8)] = None,
    csrf: CsrfField = None,
) -> Response:
    """POST /erasures, once the admin has typed the person's key a second time, exactly."""
    asked = {"key": key, "value": value.strip(), "suppress": suppress is not None}

    async def erase_person() -> erasure.Erased:
        wanted = _by_key(key, value.strip())
        if confirm.strip() != value.strip():
            raise InvalidInput(
                "confirmation_mismatch", f"type the same {key} again to confirm", field="confirm"
            )
        body = validated(ErasureRequest, {**wanted, "suppress": suppress is not None})
        person = erasure.Person(user_id=body.user_id, email=body.email)
        return await erasure.erase(
            db, project=login.project, person=person, suppress=body.suppress, actor=actor(login)
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _privacy_page(request, login, db, status=status, erase=asked,
                                   errors=_on_person_form("erase", errors))  # fmt: skip

    return await act(
        login, csrf, erase_person,
        done=lambda erased: RedirectResponse(
            f"/admin/privacy?erased={erased.started.contact_id}", status_code=303
        ),
        failed=failed,
    )  # fmt: skip


async def _contact_id(tx: Tx, login: SignedIn, key: str, value: str) -> int:
    """POST /contacts/search for the one contact with this email or user_id (the search
    ignores case; a user_id is matched exactly among what it finds)."""
    condition = {"field": key, "operator": "=", "value": value}
    page = await search.search(
        tx, project=await project_config(tx, login), kind=Kind.CONTACTS,
        filters=[(condition, "value")], sort=None, limit=20, cursor=None,
    )  # fmt: skip
    found = [c.id for c in page.items if key == "email" or c.user_id == value]
    if not found:
        raise NotFound(
            "unknown_contact", f"no contact with this {key} in the project", field="value"
        )
    return int(found[0])


@router.post("/privacy/export")
async def export(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    key: Short = "email",
    value: Short = "",
    csrf: CsrfField = None,
) -> Response:
    """GET /contacts/{id}/export of the person with this email or user_id, as a download."""
    asked = {"key": key, "value": value.strip()}

    async def exported() -> tuple[int, str]:
        _by_key(key, value.strip())
        if not value.strip():
            raise InvalidInput("missing_field", f"give the {key} of the person", field="value")
        contact_id = await db.run(lambda tx: _contact_id(tx, login, key, value.strip()))
        document = await export_contact(contact_id, login.project, db)
        return contact_id, document.model_dump_json(indent=2)

    def download(found: tuple[int, str]) -> Response:
        contact_id, body = found
        return Response(body, media_type="application/json", headers={
            "Content-Disposition": f'attachment; filename="contact-{contact_id}.json"',
            "Cache-Control": "no-store",
        })  # fmt: skip

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _privacy_page(request, login, db, status=status, export=asked,
                                   errors=_on_person_form("export", errors))  # fmt: skip

    return await act(login, csrf, exported, done=download, failed=failed)

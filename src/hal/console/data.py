"""The console's data screens: attribute definitions (create with a type; edit label,
description and options; archive) and the team's saved views (open, rename, delete)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Form, Path, Request
from fastapi.responses import HTMLResponse, Response

from hal.api.deps import DatabaseDep, RowId, SettingsDep
from hal.api.errors import status_for
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
)
from hal.db.engine import Tx
from hal.domain.attributes import MAX_OPTIONS, Attribute, AttrType, Model, Source
from hal.domain.errors import NotFound
from hal.domain.limits import Limits
from hal.domain.search import Kind
from hal.inbox.session import SignedIn
from hal.schemas.attributes import AttributeCreate, AttributePatch
from hal.schemas.views import ViewPatch
from hal.services import attributes, views

Text = Annotated[str, Form(max_length=20_000)]
Short = Annotated[str, Form(max_length=1024)]
Key = Annotated[str, Path(min_length=1, max_length=64)]
FIELDS = ("model", "key", "type", "label", "description", "options")


def options_of(text: str) -> list[str]:
    """A list attribute's options, one per line (an option may hold a comma)."""
    return [line.strip() for line in text.splitlines() if line.strip()]


async def _listed(tx: Tx, login: SignedIn) -> list[attributes.AttributeView]:
    return await attributes.list_attributes(tx, project=await project_config(tx, login))


async def _attributes_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    found = await db.run(lambda tx: _listed(tx, login))
    return render(request, "admin/attributes.html", login, status=status, errors=errors,
                  title="Attributes", current="/admin/attributes", models=list(Model),
                  types=list(AttrType), max_options=MAX_OPTIONS,
                  by_model={m: [v for v in found if v.attribute.model is m] for m in Model},
                  **context)  # fmt: skip


@router.get("/attributes")
async def attributes_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _attributes_page(request, login, db)


@router.post("/attributes")
async def create_attribute(
    request: Request,
    login: AdminDep,
    db: DatabaseDep,
    settings: SettingsDep,
    key: Short,
    model: Short = "contact",
    type: Short = "string",
    label: Short = "",
    description: Text = "",
    options: Text = "",
    csrf: CsrfField = None,
) -> Response:
    """POST /attributes: the same body model, the same definition and service call."""
    submitted = {"model": model, "key": key.strip(), "type": type, "label": label.strip() or None,
                 "description": description.strip() or None,
                 "options": options_of(options) if type == AttrType.LIST else None}  # fmt: skip

    async def create() -> object:
        body = validated(AttributeCreate, submitted)
        attribute = Attribute(
            model=body.model, key=body.key, type=body.type, source=Source.ADMIN,
            label=body.label, description=body.description, options=tuple(body.options or ()),
        )  # fmt: skip
        return await db.run(
            lambda tx: _create(tx, login, attribute, settings.limits)  # the route's own call
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        shown = {**submitted, "options": options}
        return await _attributes_page(request, login, db, status=status, submitted=shown,
                                      errors=on_form(errors, *FIELDS))  # fmt: skip

    return await act(login, csrf, create, done=back_to("/admin/attributes?saved=1"), failed=failed)


async def _create(tx: Tx, login: SignedIn, attribute: Attribute, limits: Limits) -> object:
    return await attributes.create_attribute(
        tx, project=await project_config(tx, login), attribute=attribute, limits=limits,
        actor=actor(login),
    )  # fmt: skip


# --- one attribute --------------------------------------------------------------------------


async def _attribute_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    model: Model,
    key: str,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    found = await db.run(lambda tx: _listed(tx, login))
    editable = [view for view in found if (view.attribute.model, view.attribute.key) == (model, key)
                and view.attribute.source is not Source.BUILTIN]  # fmt: skip
    if editable:
        return render(request, "admin/attribute.html", login, status=status, errors=errors,
                      title=f"Attribute {model}.{key}", current="/admin/attributes",
                      view=editable[0], **context)  # fmt: skip
    missing = NotFound("unknown_attribute", f"no {model} attribute {key!r} to edit")
    return await _attributes_page(request, login, db, status=status_for(missing),
                                  errors={"form": missing.message})  # fmt: skip


@router.get("/attributes/{model}/{key}")
async def attribute_page(
    request: Request, model: Model, key: Key, login: AdminDep, db: DatabaseDep
) -> HTMLResponse:
    return await _attribute_page(request, login, db, model, key)


async def _edit(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    csrf: str | None,
    model: Model,
    key: str,
    wanted: dict[str, Any],
) -> Response:
    """PATCH /attributes/{model}/{key}: the same body model and the same service call."""

    async def edit() -> object:
        changes = validated(AttributePatch, wanted).model_dump(exclude_unset=True)
        if "options" in changes:
            changes["options"] = tuple(changes["options"] or ())
        return await db.run(
            lambda tx: _edit_call(tx, login, model, key, changes)  # the route's own call
        )

    async def failed(errors: dict[str, str], status: int) -> Response:
        return await _attribute_page(request, login, db, model, key, status=status,
                                     errors=on_form(errors, *FIELDS), submitted=wanted)  # fmt: skip

    path = f"/admin/attributes/{model}/{key}?saved=1"
    return await act(login, csrf, edit, done=back_to(path), failed=failed)


async def _edit_call(
    tx: Tx, login: SignedIn, model: Model, key: str, changes: dict[str, Any]
) -> object:
    return await attributes.edit_attribute(
        tx, project=await project_config(tx, login), model=model, key=key, changes=changes,
        actor=actor(login),
    )  # fmt: skip


@router.post("/attributes/{model}/{key}")
async def edit_attribute(
    request: Request,
    model: Model,
    key: Key,
    login: AdminDep,
    db: DatabaseDep,
    label: Short = "",
    description: Text = "",
    options: Text = "",
    has_options: Annotated[str | None, Form(max_length=8)] = None,
    csrf: CsrfField = None,
) -> Response:
    wanted: dict[str, Any] = {"label": label.strip() or None,
                              "description": description.strip() or None}  # fmt: skip
    if has_options:  # only a list attribute's form has the box (an empty one clears it)
        wanted["options"] = options_of(options)
    return await _edit(request, login, db, csrf, model, key, wanted)


@router.post("/attributes/{model}/{key}/archived")
async def archive_attribute(
    request: Request,
    model: Model,
    key: Key,
    login: AdminDep,
    db: DatabaseDep,
    archived: Annotated[str, Form(max_length=8)],
    csrf: CsrfField = None,
) -> Response:
    """Archive (writes to it are refused) or unarchive."""
    wanted = {"archived": {"true": True, "false": False}.get(archived, archived)}
    return await _edit(request, login, db, csrf, model, key, wanted)


# --- saved views ----------------------------------------------------------------------------

INBOX_PATHS = {Kind.CONVERSATIONS: "/inbox", Kind.CONTACTS: "/inbox/contacts",
               Kind.COMPANIES: "/inbox/companies"}  # fmt: skip


async def _views_page(
    request: Request,
    login: SignedIn,
    db: DatabaseDep,
    *,
    status: int = 200,
    errors: Any = None,
    **context: Any,
) -> HTMLResponse:
    async def load(tx: Tx) -> list[views.CountedView]:
        return await views.list_views(tx, project=await project_config(tx, login), model=None)

    found = await db.run(load)
    return render(request, "admin/views.html", login, status=status, errors=errors,
                  title="Views", current="/admin/views", views=found,
                  inbox_paths=INBOX_PATHS, **context)  # fmt: skip


@router.get("/views")
async def views_page(request: Request, login: AdminDep, db: DatabaseDep) -> HTMLResponse:
    return await _views_page(request, login, db)


def _view_failed(request: Request, login: SignedIn, db: DatabaseDep, view_id: int) -> Any:
    async def failed(errors: dict[str, str], status: int) -> Response:
        shown = {key if key == "form" else f"{key}-{view_id}": message
                 for key, message in on_form(errors, "name").items()}  # fmt: skip
        return await _views_page(request, login, db, status=status, errors=shown)

    return failed


@router.post("/views/{view_id}/rename")
async def rename_view(
    request: Request,
    view_id: RowId,
    login: AdminDep,
    db: DatabaseDep,
    name: Annotated[str, Form(max_length=1024)] = "",
    csrf: CsrfField = None,
) -> Response:
    """PATCH /views/{view_id} with a new name."""

    async def rename() -> object:
        changes = validated(ViewPatch, {"name": name}).model_dump(exclude_unset=True)

        async def work(tx: Tx) -> object:
            return await views.edit_view(
                tx, project=await project_config(tx, login), view_id=view_id, changes=changes,
                actor=actor(login),
            )  # fmt: skip

        return await db.run(work)

    return await act(login, csrf, rename, done=back_to("/admin/views?saved=1"),
                     failed=_view_failed(request, login, db, view_id))  # fmt: skip


@router.post("/views/{view_id}/delete")
async def delete_view(
    request: Request, view_id: RowId, login: AdminDep, db: DatabaseDep, csrf: CsrfField = None
) -> Response:
    """DELETE /views/{view_id} (its records stay)."""

    async def delete() -> None:
        async def work(tx: Tx) -> None:
            await views.delete_view(
                tx, project=await project_config(tx, login), view_id=view_id, actor=actor(login)
            )

        await db.run(work)

    return await act(login, csrf, delete, done=back_to("/admin/views"),
                     failed=_view_failed(request, login, db, view_id))  # fmt: skip

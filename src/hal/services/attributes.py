"""Attribute types on every metadata write (README "Attributes").

`check_types` is the one check (pure, before anything is written): the widget writes what
fits and answers the rest in `warnings`; the team API, batch items and import rows are refused
422 naming the key. `define_new` then makes the definitions of keys written for the first
time, in the write's transaction."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from hal.db.engine import Tx
from hal.db.store.attributes import (
    define_attributes,
    insert_attribute,
    nonconforming_counts,
    stored_definitions,
    update_attribute,
)
from hal.domain.attributes import (
    BUILTINS,
    Attribute,
    AttrType,
    Model,
    Source,
    TypedWrite,
    check_definition,
    type_write,
)
from hal.domain.errors import Conflict, InvalidInput, NotFound
from hal.domain.limits import Limits
from hal.domain.projects import ProjectConfig
from hal.services.audit import Actor, record_audit


def check_types(
    project: ProjectConfig,
    model: Model,
    metadata: Mapping[str, Any],
    *,
    limits: Limits,
    refuse: bool,
    field: str = "metadata",
    known: Mapping[str, Attribute] | None = None,
) -> TypedWrite:
    """The write checked against the project's attributes (`refuse`: 422 on a problem)."""
    known = project.attributes_of(model) if known is None else known
    typed = type_write(
        metadata, known, model=model, count=len(known), max_attributes=limits.max_attributes
    )
    if refuse:
        typed.refuse(field=field)
    return typed


async def define_new(
    tx: Tx,
    typed: TypedWrite,
    *,
    project: ProjectConfig,
    model: Model,
    limits: Limits,
    refuse: bool,
    field: str = "metadata",
) -> TypedWrite:
    """Define the keys this write names first; when another writer defined one meanwhile
    with another type, the checked values are checked again against it."""
    if not typed.new:
        return typed
    defined = await define_attributes(tx, project_id=project.id, model=model, types=typed.new)
    if all(defined[key].type == type_ for key, type_ in typed.new.items()):
        return typed
    known = {**project.attributes_of(model), **defined}
    return check_types(
        project, model, typed.values, limits=limits, refuse=refuse, field=field, known=known
    )


async def typed_metadata(
    tx: Tx,
    *,
    project: ProjectConfig,
    model: Model,
    metadata: Mapping[str, Any],
    limits: Limits,
    refuse: bool,
    field: str = "metadata",
) -> TypedWrite:
    """Both steps, for a use case that writes right after its checks."""
    typed = check_types(project, model, metadata, limits=limits, refuse=refuse, field=field)
    return await define_new(
        tx, typed, project=project, model=model, limits=limits,
        refuse=refuse, field=field,
    )  # fmt: skip


# --- administration (GET/POST/PATCH /api/projects/{app_id}/attributes) ---------------------


@dataclass(frozen=True)
class AttributeView:
    """An attribute as the API lists it."""

    attribute: Attribute
    protected: bool
    nonconforming: int
    created_at: datetime | None


async def list_attributes(tx: Tx, *, project: ProjectConfig) -> list[AttributeView]:
    """Built-in fields first, then every definition, by model and key; `nonconforming` counts
    the stored values not of their attribute's type (written before it had one)."""
    stored = await stored_definitions(tx, project_id=project.id)
    counts = await nonconforming_counts(tx, project_id=project.id, attributes=stored)
    views = [
        AttributeView(Attribute(model, key, type_, Source.BUILTIN), False, 0, None)
        for model, fields in BUILTINS.items()
        for key, type_ in fields.items()
    ]
    for attribute, created_at in stored:
        protected = attribute.model is Model.CONTACT and attribute.key in project.protected_keys
        count = counts.get((attribute.model, attribute.key), 0)
        views.append(AttributeView(attribute, protected, count, created_at))
    return views


async def create_attribute(
    tx: Tx, *, project: ProjectConfig, attribute: Attribute, limits: Limits, actor: Actor
) -> AttributeView:
    """An admin's definition before first use (to pick `date` or `list`): 409 when the key
    is defined already, 422 past the limit of attributes."""
    check_definition(attribute)
    known = project.attributes_of(attribute.model)
    if attribute.key in known or attribute.key in BUILTINS[attribute.model]:
        raise Conflict(
            "attribute_exists",
            f"{attribute.model}.{attribute.key} is defined already (a type never changes)",
            field="key",
        )
    if len(known) >= limits.max_attributes:
        raise InvalidInput(
            "too_many_attributes",
            f"a project has at most {limits.max_attributes} {attribute.model} attributes",
            field="key",
        )
    created = await insert_attribute(tx, project_id=project.id, attribute=attribute)
    if created is None:
        raise Conflict("attribute_exists", "the key was defined meanwhile", field="key")
    await record_audit(
        tx, project_id=project.id, actor=actor, action="attribute.created",
        target=f"{attribute.model}.{attribute.key}", changes={"type": attribute.type.value},
        now=tx.now,
    )  # fmt: skip
    return AttributeView(created, False, 0, tx.now)


async def edit_attribute(
    tx: Tx,
    *,
    project: ProjectConfig,
    model: Model,
    key: str,
    changes: Mapping[str, Any],
    actor: Actor,
) -> AttributeView:
    """Edit a definition's label, description, options or archived flag (never its type)."""
    found = {(a.model, a.key): (a, at) for a, at in await stored_definitions(
        tx, project_id=project.id)}  # fmt: skip
    if (model, key) not in found:
        raise NotFound("unknown_attribute", f"no {model} attribute {key!r}", field="key")
    current, created_at = found[(model, key)]
    if "options" in changes and current.type is not AttrType.LIST:
        raise InvalidInput("invalid_field", "only a list attribute has options", field="options")
    edited = replace(current, **dict(changes))
    check_definition(edited)
    await update_attribute(tx, project_id=project.id, attribute=edited)
    await record_audit(
        tx, project_id=project.id, actor=actor, action="attribute.updated",
        target=f"{model}.{key}", changes={name: {"new": value} for name, value in changes.items()},
        now=tx.now,
    )  # fmt: skip
    return AttributeView(edited, key in project.protected_keys, 0, created_at)

"""Attribute definitions made when a key is first written (one statement; whoever made it
first wins: its type is the key's). They are read with the project's settings
(db/project_cache.py)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Table, select, update

from hal.db import project_cache
from hal.db.engine import Tx
from hal.db.project_cache import ATTRIBUTE_COLUMNS, ATTRIBUTES, attribute_of
from hal.db.store.base import COMPANIES, CONTACTS, insert, per_dialect
from hal.db.store.lookahead import Lookahead, ahead_of
from hal.domain.attributes import Attribute, AttrType, Model, Source, conforms


@per_dialect
def _define(insert: Callable[[Table], Any]) -> Any:
    statement = insert(ATTRIBUTES)
    # A no-op update on a key defined meanwhile, so RETURNING gives its row (and its type).
    return statement.on_conflict_do_update(
        index_elements=[ATTRIBUTES.c.project_id, ATTRIBUTES.c.model, ATTRIBUTES.c.key],
        set_={"type": ATTRIBUTES.c.type},
    ).returning(*ATTRIBUTE_COLUMNS)


async def define_attributes(
    tx: Tx, *, project_id: int, model: Model, types: Mapping[str, AttrType]
) -> dict[str, Attribute]:
    """Define keys first written now; a key another writer defined first keeps its type."""
    if (ahead := ahead_of(tx)) is not None:
        return _define_ahead(tx, ahead, project_id=project_id, model=model, types=types)
    rows: list[dict[str, Any]] = [
        {
            "project_id": project_id,
            "model": model.value,
            "key": key,
            "type": type_.value,
            "source": Source.AUTO.value,
            "options": [],
            "archived": False,
            "created_at": tx.now,
        }
        for key, type_ in sorted(types.items())
    ]
    defined = {}
    for row in rows:  # RETURNING of a multi-row upsert is not in row order on every engine
        attribute = attribute_of((await tx.execute(_define(tx), row)).one())
        defined[attribute.key] = attribute
    # Once committed, this process's cached settings have them (others within a second).
    tx.committed.append(partial(tx.projects.learn, project_id, defined))
    return defined


def _define_ahead(
    tx: Tx, ahead: Lookahead, *, project_id: int, model: Model, types: Mapping[str, AttrType]
) -> dict[str, Attribute]:
    """`define_attributes` in an import chunk: the chunk read the project's definitions; a
    new one is written with the chunk (a key defined meanwhile by another writer fails its
    insert, and the chunk runs again)."""
    defined = {}
    for key, type_ in sorted(types.items()):
        attribute = ahead.defined(model, key)
        if attribute is None:
            attribute = Attribute(model=model, key=key, type=type_, source=Source.AUTO)
            row: dict[str, Any] = {"project_id": project_id, "model": model.value, "key": key,
                   "type": type_.value, "source": Source.AUTO.value, "options": [],
                   "archived": False, "created_at": tx.now}  # fmt: skip
            ahead.define(attribute, row)
        defined[key] = attribute
    tx.committed.append(partial(tx.projects.learn, project_id, defined))
    return defined


async def stored_definitions(tx: Tx, *, project_id: int) -> list[tuple[Attribute, datetime]]:
    """Every definition of the project with when it was made, by model and key."""
    query = (
        select(*ATTRIBUTE_COLUMNS, ATTRIBUTES.c.created_at)
        .where(ATTRIBUTES.c.project_id == project_id)
        .order_by(ATTRIBUTES.c.model, ATTRIBUTES.c.key)
    )
    return [(attribute_of(row), row.created_at) for row in await tx.execute(query)]


async def insert_attribute(tx: Tx, *, project_id: int, attribute: Attribute) -> Attribute | None:
    """An admin's definition; None when the key was defined meanwhile."""
    statement = (
        insert(tx, ATTRIBUTES)
        .values(
            project_id=project_id,
            model=attribute.model.value,
            key=attribute.key,
            type=attribute.type.value,
            source=attribute.source.value,
            label=attribute.label,
            description=attribute.description,
            options=list(attribute.options),
            archived=attribute.archived,
            created_at=tx.now,
        )
        .on_conflict_do_nothing()
        .returning(*ATTRIBUTE_COLUMNS)
    )
    row = (await tx.execute(statement)).first()
    project_cache.attributes_changed()
    return attribute_of(row) if row is not None else None


async def update_attribute(tx: Tx, *, project_id: int, attribute: Attribute) -> None:
    """Write a definition's label, description, options and archived flag."""
    await tx.execute(
        update(ATTRIBUTES)
        .where(
            ATTRIBUTES.c.project_id == project_id,
            ATTRIBUTES.c.model == attribute.model.value,
            ATTRIBUTES.c.key == attribute.key,
        )
        .values(
            label=attribute.label,
            description=attribute.description,
            options=list(attribute.options),
            archived=attribute.archived,
        )
    )
    project_cache.attributes_changed()


async def nonconforming_counts(
    tx: Tx, *, project_id: int, attributes: list[tuple[Attribute, datetime]]
) -> dict[tuple[Model, str], int]:
    """How many stored values of each attribute are not of its type, read a batch of rows at
    a time (an administration page's cost, proportional to the project's records)."""
    by_model: dict[Model, dict[str, Attribute]] = {model: {} for model in Model}
    for attribute, _ in attributes:
        by_model[attribute.model][attribute.key] = attribute
    counts: dict[tuple[Model, str], int] = {}
    for model, table in ((Model.CONTACT, CONTACTS), (Model.COMPANY, COMPANIES)):
        known = by_model[model]
        if not known:
            continue
        rows = await tx.connection.stream(
            select(table.c.metadata).where(table.c.project_id == project_id)
        )
        async for (metadata,) in rows:
            for key, value in (metadata or {}).items():
                typed = known.get(key)
                if typed is None or value is None:
                    continue
                values = value if isinstance(value, list) else [value]
                if not all(conforms(v, typed.type) for v in values):
                    counts[(model, key)] = counts.get((model, key), 0) + 1
    return counts

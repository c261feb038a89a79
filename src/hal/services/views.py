"""Saved views (README "Saved views"): the team's named searches of contacts, companies or
conversations, each listed with how many records it finds now. A view's query and sort are
checked exactly as a search's (services/search.py); the lists answer `?view=ID` with
`get_view`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select

from hal.db.engine import Tx
from hal.db.models import View
from hal.db.queries import locked
from hal.domain.errors import Conflict, InvalidInput, NotFound
from hal.domain.projects import ProjectConfig
from hal.domain.search import Kind
from hal.services import search
from hal.services.audit import Actor, record_audit


@dataclass(frozen=True)
class SavedView:
    """A view as the lists read it: `query` None lists every record, `sort` None the list's
    own order."""

    id: int
    name: str
    model: Kind
    query: dict[str, Any] | None
    sort: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class CountedView:
    """A view with the records it finds now (exact up to 10,000). A query that no longer
    fits the project's fields (a list option it names was removed) has no count, and
    `problem` says why, so one such view does not hide the others."""

    view: SavedView
    count: int | None
    count_exact: bool
    problem: str | None = None


def _saved(row: View) -> SavedView:
    return SavedView(row.id, row.name, Kind(row.model), row.query, row.sort, row.created_at,
                     row.updated_at)  # fmt: skip


async def _counted(tx: Tx, project: ProjectConfig, view: SavedView) -> CountedView:
    try:
        total, exact = await search.count(tx, project=project, kind=view.model, query=view.query)
    except InvalidInput as exc:
        return CountedView(view, None, False, f"{exc.field}: {exc.message}")
    return CountedView(view, total, exact)


async def _row(tx: Tx, project: ProjectConfig, view_id: int, *, lock: bool = False) -> View:
    query = select(View).where(View.id == view_id, View.project_id == project.id)
    row = (await tx.orm.execute(locked(query) if lock else query)).scalar_one_or_none()
    if row is None:
        raise NotFound("view_not_found", f"no view {view_id}", field="view_id")
    return row


async def _refuse_taken_name(
    tx: Tx, project: ProjectConfig, model: Kind, name: str, *, other_than: int | None = None
) -> None:
    query = select(View.id).where(
        View.project_id == project.id, View.model == model.value, View.name == name
    )
    if other_than is not None:
        query = query.where(View.id != other_than)
    if (await tx.orm.execute(query)).first() is not None:
        raise Conflict("view_exists", f"a {model} view is named {name!r} already", field="name")


async def get_view(tx: Tx, *, project: ProjectConfig, view_id: int) -> SavedView:
    """One view of the project (for `?view=ID` on the lists), or 404 view_not_found."""
    return _saved(await _row(tx, project, view_id))


async def read_view(tx: Tx, *, project: ProjectConfig, view_id: int) -> CountedView:
    """One view with its count now."""
    return await _counted(tx, project, await get_view(tx, project=project, view_id=view_id))


async def list_views(
    tx: Tx, *, project: ProjectConfig, model: Kind | None = None
) -> list[CountedView]:
    """The project's views (of one model when given), oldest first, each with its count."""
    query = select(View).where(View.project_id == project.id)
    if model is not None:
        query = query.where(View.model == model.value)
    rows = (await tx.orm.execute(query.order_by(View.id))).scalars().all()
    return [await _counted(tx, project, _saved(row)) for row in rows]


async def create_view(
    tx: Tx,
    *,
    project: ProjectConfig,
    name: str,
    model: Kind,
    query: dict[str, Any] | None,
    sort: dict[str, Any] | None,
    actor: Actor,
) -> CountedView:
    """Save a search under a name unique among the project's views of that model (409
    view_exists); its query and sort are refused 422 as a search's would be."""
    search.check(tx, project=project, kind=model, query=query, sort=sort)
    await _refuse_taken_name(tx, project, model, name)
    row = View(project_id=project.id, name=name, model=model.value, query=query, sort=sort,
               created_at=tx.now, updated_at=tx.now)  # fmt: skip
    tx.orm.add(row)
    await tx.orm.flush()  # a name taken meanwhile fails here, and the retry answers 409
    await record_audit(
        tx, project_id=project.id, actor=actor, action="view.created", target=str(row.id),
        changes={"name": name, "model": model.value}, now=tx.now,
    )  # fmt: skip
    return await _counted(tx, project, _saved(row))


async def edit_view(
    tx: Tx, *, project: ProjectConfig, view_id: int, changes: Mapping[str, Any], actor: Actor
) -> CountedView:
    """Rename a view or change its query or sort (any of them; None clears a query or a
    sort); its model stays."""
    row = await _row(tx, project, view_id, lock=True)
    model = Kind(row.model)
    if "query" in changes or "sort" in changes:
        search.check(tx, project=project, kind=model, query=changes.get("query", row.query),
                     sort=changes.get("sort", row.sort))  # fmt: skip
    if "name" in changes:
        await _refuse_taken_name(tx, project, model, changes["name"], other_than=row.id)
    for name, value in changes.items():
        setattr(row, name, value)
    row.updated_at = tx.now
    await tx.orm.flush()
    # A query may name a person (an email): the entry says what changed, not to what.
    await record_audit(
        tx, project_id=project.id, actor=actor, action="view.updated", target=str(row.id),
        changes={name: {"new": value} if name == "name" else {"changed": True}
                 for name, value in changes.items()},
        now=tx.now,
    )  # fmt: skip
    return await _counted(tx, project, _saved(row))


async def delete_view(tx: Tx, *, project: ProjectConfig, view_id: int, actor: Actor) -> None:
    """Remove a view (the records it lists stay)."""
    row = await _row(tx, project, view_id)
    await tx.orm.delete(row)
    await tx.orm.flush()
    await record_audit(
        tx, project_id=project.id, actor=actor, action="view.deleted", target=str(view_id),
        changes={"name": row.name, "model": row.model}, now=tx.now,
    )  # fmt: skip


async def find(
    tx: Tx,
    *,
    app_id: str,
    kind: Kind,
    view_id: int | None,
    filters: Sequence[search.Filter],
    sort: Any,
    limit: int,
    cursor: str | None,
) -> search.SearchPage:
    """A list's page through a saved view (`?view=ID`: its query, and its sort unless the URL
    has one) and the URL's own filters, all of which a record must pass."""
    project = await tx.project(app_id)
    if view_id is not None:
        try:
            view = await get_view(tx, project=project, view_id=view_id)
        except NotFound as exc:
            raise NotFound(exc.code, exc.message, field="view") from None
        if view.model is not kind:
            raise InvalidInput("invalid_view", f"view {view_id} lists {view.model}", field="view")
        filters = [(view.query, "view.query"), *filters]
        sort = view.sort if sort is None else sort
    return await search.search(tx, project=project, kind=kind, filters=filters, sort=sort,
                               limit=limit, cursor=cursor)  # fmt: skip

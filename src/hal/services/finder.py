"""The inbox's finder screens (README "The inbox finds people"): the conversation list, the
contacts page and the companies page, each filtered by a query from the URL or a saved view,
with the fields the filter builder offers, the views beside the list and the live count."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import select

from hal.db.engine import Tx
from hal.db.models import Company, ContactCompany
from hal.domain.attributes import AttrType, Model
from hal.domain.crm import DealStatus
from hal.domain.errors import InvalidInput, NotFound
from hal.domain.projects import ProjectConfig
from hal.domain.search import OPERATORS, PRESENCE_OPS, FieldSpec, Kind
from hal.services import search, views
from hal.services.audit import Actor
from hal.services.views import CountedView, SavedView

# The built-ins as an agent reads them.
_BUILTIN_LABELS = {
    "user_id": "User id",
    "email": "Email",
    "name": "Name",
    "verified": "Verified",
    "created_at": "Created",
    "last_seen_at": "Last seen",
    "id": "Id",
    "stage": "Stage",
    "contact_count": "Contacts",
    "status": "Status",
    "amount": "Amount",
}
_CONVERSATION_LABELS = {"created_at": "Started", "updated_at": "Last activity"}
# The builder's groups: the record's own fields first, then the related records'.
_OWN_GROUP = {
    Kind.CONTACTS: "Contact",
    Kind.COMPANIES: "Company",
    Kind.CONVERSATIONS: "Conversation",
}
_RELATION_GROUP = {"contact": "Contact", "company": "Company", "deal": "Deal"}
MAX_VIEW_NAME = 255
CONVERSATION_STATUSES = ("open", "closed")


@dataclass(frozen=True)
class Choice:
    """A field the filter builder offers: the query's name for it, its label, its group, its
    type, the values to pick from (a list's options, or the project's stages) and the
    operators its type takes."""

    field: str
    label: str
    group: str
    type: AttrType
    options: tuple[str, ...]
    operators: tuple[str, ...]

    def as_json(self) -> dict[str, Any]:
        return {"field": self.field, "label": self.label, "group": self.group,
                "type": str(self.type), "options": list(self.options),
                "operators": list(self.operators)}  # fmt: skip


def _humanized(key: str) -> str:
    words = key.replace("_", " ").replace(".", " ").strip()
    return words[:1].upper() + words[1:] if words else key


def _model_of(kind: Kind, spec: FieldSpec) -> Model:
    """Whose attribute a metadata field is: a company's or a contact's."""
    own_company = spec.relation is None and kind is Kind.COMPANIES
    return Model.COMPANY if spec.relation == "company" or own_company else Model.CONTACT


def _label(project: ProjectConfig, kind: Kind, spec: FieldSpec) -> str:
    if spec.source == "metadata":
        attribute = project.attributes_of(_model_of(kind, spec)).get(spec.name)
        label = (attribute.label if attribute else None) or _humanized(spec.name)
        return f"{label} (archived)" if attribute and attribute.archived else label
    if kind is Kind.CONVERSATIONS and spec.relation is None:
        return _CONVERSATION_LABELS.get(spec.name, _BUILTIN_LABELS.get(spec.name, spec.name))
    return _BUILTIN_LABELS.get(spec.name, _humanized(spec.name))


def _related(group: str, label: str) -> str:
    """A related record's field, named by its group: "Company stage"."""
    lowered = label if label[1:2].isupper() else label[:1].lower() + label[1:]
    return f"{group} {lowered}"


def _builtin_options(project: ProjectConfig, spec: FieldSpec) -> tuple[str, ...]:
    """The values a built-in string takes, to pick from: the project's stages, a deal's and a
    conversation's statuses."""
    if spec.name == "stage":
        return project.stages
    if spec.name == "status":
        if spec.relation == "deal":
            return tuple(status.value for status in DealStatus)
        return CONVERSATION_STATUSES
    return ()


def choices(project: ProjectConfig, kind: Kind) -> list[Choice]:
    """The fields a filter of `kind` may name, labelled and grouped for the builder: in each
    group the built-ins, then the attributes by label. Labels are unique within the list (an
    attribute labelled like a built-in says it is an attribute)."""
    found: list[tuple[Choice, bool]] = []  # each with whether it is an attribute
    for name, spec in search.catalog(project, kind).items():
        group = _RELATION_GROUP[spec.relation] if spec.relation else _OWN_GROUP[kind]
        label = _label(project, kind, spec)
        if spec.relation is not None:
            label = _related(group, label)
        options = _builtin_options(project, spec) if spec.source == "builtin" else spec.options
        operators = (*OPERATORS[spec.type], *PRESENCE_OPS)
        choice = Choice(name, label, group, spec.type, options, operators)
        found.append((choice, spec.source == "metadata"))
    groups = list(dict.fromkeys(choice.group for choice, _ in found))
    # A stable sort: the built-ins keep the catalog's order.
    found.sort(key=lambda item: (groups.index(item[0].group), item[1],
                                 item[0].label.casefold() if item[1] else ""))  # fmt: skip
    labels = Counter(choice.label for choice, _ in found)
    return [
        replace(choice, label=f"{choice.label} (attribute)")
        if attribute and labels[choice.label] > 1
        else choice
        for choice, attribute in found
    ]


@dataclass(frozen=True)
class Found:
    """A finder screen: the records a filter (or a view) finds, a page at a time, or why the
    filter could not be read; the builder's fields and the filter to show in it; the views
    of this kind with their counts; and, on the contacts page, each contact's companies."""

    kind: Kind
    choices: list[Choice]
    query: Any
    page: search.SearchPage | None
    problem: str | None
    views: list[CountedView]
    view: SavedView | None
    companies: dict[int, list[Company]] = field(default_factory=dict)


async def _project(tx: Tx, app_id: str) -> ProjectConfig:
    return await tx.project(app_id)


def _status_filter(status: str | None) -> list[search.Filter]:
    if status is None:
        return []
    return [({"field": "status", "operator": "=", "value": status}, "status")]


async def find(
    tx: Tx,
    *,
    app_id: str,
    kind: Kind,
    filter_text: str | None,
    view_id: int | None,
    status: str | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Found:
    """A finder screen of `kind`: the view's records (`view_id`) or the filter's (URL-encoded
    JSON, None for all), of one conversation `status` when given. A filter that cannot be
    read, a view of another kind or a foreign one, and a bad cursor become `problem`."""
    project = await _project(tx, app_id)
    saved = await views.list_views(tx, project=project, model=kind)
    view, query, page, problem = None, None, None, None
    try:
        if view_id is not None:
            view = await views.get_view(tx, project=project, view_id=view_id)
            if view.model is not kind:
                raise NotFound("view_not_found", f"view {view_id} lists {view.model}")
            query = view.query
        else:
            query = search.read_json(filter_text, "filter")
        page = await search.search(
            tx, project=project, kind=kind, filters=[*_status_filter(status), (query, "filter")],
            sort=view.sort if view else None, limit=limit, cursor=cursor,
        )  # fmt: skip
    except (InvalidInput, NotFound) as refused:
        problem = _problem(refused)
    companies = {}
    if page is not None and kind is Kind.CONTACTS:
        companies = await _companies_of(tx, [contact.id for contact in page.items])
    return Found(kind, choices(project, kind), query if problem is None else None, page,
                 problem, saved, view, companies)  # fmt: skip


def _problem(refused: InvalidInput | NotFound) -> str:
    if isinstance(refused, NotFound):
        return "This view does not exist (it may have been deleted)."
    if refused.code == "invalid_cursor":
        return "This page's link is out of date: start again from the first page."
    where = f" (at {refused.field})" if refused.field else ""
    return f"This filter could not be read: {refused.message}{where}."


async def _companies_of(tx: Tx, contact_ids: Sequence[int]) -> dict[int, list[Company]]:
    """Each contact's linked companies, oldest link first."""
    if not contact_ids:
        return {}
    rows = await tx.orm.execute(
        select(ContactCompany.contact_id, Company)
        .join(Company, Company.id == ContactCompany.company_id)
        .where(ContactCompany.contact_id.in_(contact_ids))
        .order_by(ContactCompany.created_at, Company.id)
    )
    linked: dict[int, list[Company]] = {}
    for contact_id, company in rows:
        linked.setdefault(contact_id, []).append(company)
    return linked


async def count(
    tx: Tx, *, app_id: str, kind: Kind, filter_text: str | None, status: str | None = None
) -> tuple[int, bool]:
    """How many records a filter finds (of one conversation `status` when given): exact up
    to 10,000, and whether it is exact; 422 `invalid_query` for a filter that cannot be read."""
    project = await _project(tx, app_id)
    query = search.read_json(filter_text, "filter")
    # The status is a second filter beside the agent's, not a group around it (whose depth
    # would count against the agent's own).
    return await search.count(tx, project=project, kind=kind, query=query, path="filter",
                              filters=_status_filter(status))  # fmt: skip


async def save_view(
    tx: Tx, *, app_id: str, kind: Kind, name: str, filter_text: str | None, actor: Actor
) -> CountedView:
    """Save the filter of a finder screen as a view of the team (409 `view_exists` for a name
    taken among the views of `kind`, 422 for a filter that cannot be read)."""
    project = await _project(tx, app_id)
    name = name.strip()
    if not 1 <= len(name) <= MAX_VIEW_NAME:
        raise InvalidInput("invalid_name", "a view's name is 1-255 characters", field="name")
    query = search.read_json(filter_text, "filter")
    return await views.create_view(
        tx, project=project, name=name, model=kind, query=query, sort=None, actor=actor
    )


async def delete_view(tx: Tx, *, app_id: str, view_id: int, actor: Actor) -> Kind:
    """Remove a view; the kind it listed, for the screen to go back to."""
    project = await _project(tx, app_id)
    view = await views.get_view(tx, project=project, view_id=view_id)
    await views.delete_view(tx, project=project, view_id=view_id, actor=actor)
    return view.model

"""The search's SQL means what `hal.domain.search.matches` says, on SQLite and PostgreSQL:
hypothesis makes contacts (with values of the wrong type, missing values, linked companies,
events) and queries, and the records the API pages through are exactly the reference's, each
once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hal.db.engine import Tx
from hal.db.store.attributes import define_attributes
from hal.db.store.companies import link, save_deal, update_company, upsert_companies
from hal.db.store.people import insert_contact
from hal.db.store.timeline import add_event, start_conversation
from hal.domain.attributes import AttrType, Model, format_date
from hal.domain.search import Kind, Record, matches, parse_query
from hal.services.search import catalog, search
from tests.factories import make_project

NOW = datetime.now(UTC)
# Letters whose case folding is not lower-casing (ß, final sigma, dotted I) among plain ones.
TEXT = st.text(alphabet="aAbßSsÉéΣσςİi ", min_size=0, max_size=4)  # noqa: RUF001
CONTACT_TYPES = {
    "plan": AttrType.STRING,
    "seats": AttrType.NUMBER,
    "beta": AttrType.BOOLEAN,
    "renewed_at": AttrType.DATE,
}
DATES = [NOW - timedelta(days=d) for d in (1, 6, 8, 40)]
EVENT_NAMES = ["trial-started", "login"]

metadata_values = {
    "plan": st.one_of(TEXT, st.just(5)),  # a number stored before the type: nonconforming
    "seats": st.one_of(st.sampled_from([0, 1, 2.5, 10]), st.just("ten")),
    "beta": st.booleans(),
    "renewed_at": st.one_of(st.sampled_from([format_date(d) for d in DATES]), st.just("soon")),
}


@st.composite
def contacts(draw: st.DrawFn) -> list[dict[str, Any]]:
    people = []
    for i in range(draw(st.integers(0, 7))):
        metadata = {
            key: draw(values) for key, values in metadata_values.items() if draw(st.booleans())
        }
        people.append(
            {
                "user_id": f"u{i}{draw(st.sampled_from(['', 'A', 'ß']))}",
                "name": draw(st.one_of(st.none(), TEXT)),
                "metadata": metadata,
                "companies": draw(st.sets(st.sampled_from(["c1", "c2", "c3"]), max_size=2)),
                "events": draw(
                    st.lists(
                        st.tuples(st.sampled_from(EVENT_NAMES), st.sampled_from(DATES)), max_size=3
                    )
                ),
            }
        )
    return people


COMPANIES: dict[str, dict[str, Any]] = {
    "c1": {"stage": "Trial", "metadata": {"arr": 10}},
    "c2": {"stage": "Customer", "metadata": {"arr": "big"}},
    "c3": {"stage": None, "metadata": {}},
}


def conditions() -> st.SearchStrategy[dict[str, Any]]:
    string_ops = st.sampled_from(["=", "!=", "~", "!~", "^", "$", "exists", "!exists"])
    number_ops = st.sampled_from(["=", "!=", "<", ">", "<=", ">=", "IN", "NIN", "exists"])
    date_values = st.sampled_from(["-7d", "-30d", "-1h", format_date(DATES[2])])

    def condition(field: str, ops: Any, values: Any) -> Any:
        def build(op: str, value: Any) -> dict[str, Any]:
            if op in ("exists", "!exists"):
                return {"field": field, "operator": op}
            if op in ("IN", "NIN"):
                value = [value]
            return {"field": field, "operator": op, "value": value}

        return st.builds(build, ops, values)

    return st.one_of(
        condition("name", string_ops, TEXT),
        condition("user_id", string_ops, TEXT),
        condition("metadata.plan", string_ops, TEXT),
        condition("metadata.seats", number_ops, st.sampled_from([0, 1, 2.5, 10])),
        condition("metadata.beta", st.sampled_from(["=", "!=", "!exists"]), st.booleans()),
        condition("metadata.renewed_at", number_ops, date_values),
        condition("company.stage", string_ops, st.sampled_from(["trial", "CUSTOMER", "t"])),
        condition("company.metadata.arr", number_ops, st.sampled_from([5, 10])),
        st.builds(
            lambda name, op, count, since: {
                "field": "event",
                "event": name,
                "operator": op,
                **({"value": count} if op not in ("exists", "!exists") else {}),
                **({"since": since} if since else {}),
            },
            st.sampled_from(EVENT_NAMES),
            st.sampled_from([">=", "=", "<", "exists", "!exists"]),
            st.integers(0, 2),
            st.sampled_from([None, "-7d", "-30d"]),
        ),
    )


queries = st.recursive(
    conditions(),
    lambda children: st.builds(
        lambda op, items: {"operator": op, "value": items},
        st.sampled_from(["AND", "OR"]),
        st.lists(children, min_size=1, max_size=3),
    ),
    max_leaves=6,
)


async def _store(tx: Tx, project_id: int, people: list[dict[str, Any]]) -> list[Record]:
    await define_attributes(tx, project_id=project_id, model=Model.CONTACT, types=CONTACT_TYPES)
    await define_attributes(
        tx, project_id=project_id, model=Model.COMPANY, types={"arr": AttrType.NUMBER}
    )
    rows = await upsert_companies(tx, project_id=project_id, names=dict.fromkeys(COMPANIES))
    companies = {}
    for external_id, values in COMPANIES.items():
        await update_company(tx, rows[external_id].id, values)
        companies[external_id] = {
            "id": external_id,
            "name": None,
            "stage": values["stage"],
            "created_at": rows[external_id].created_at,
            **{f"metadata.{k}": v for k, v in values["metadata"].items()},
        }
    records = []
    for person in people:
        contact_id = await insert_contact(
            tx,
            project_id=project_id,
            values={"user_id": person["user_id"], "name": person["name"],
                    "metadata": person["metadata"]},
        )  # fmt: skip
        await link(tx, contact_id=contact_id, company_ids=[rows[c].id for c in person["companies"]])
        for name, at in person["events"]:
            await add_event(tx, {"project_id": project_id, "contact_id": contact_id,
                                 "scope": "contact", "name": name, "occurred_at": at})  # fmt: skip
        values = {
            "user_id": person["user_id"],
            "name": person["name"],
            "verified": False,
            "created_at": tx.now,
            "last_seen_at": tx.now,
            **{f"metadata.{k}": v for k, v in person["metadata"].items()},
        }
        records.append(
            Record(
                values={**values, "id": contact_id},
                related={"company": [companies[c] for c in sorted(person["companies"])]},
                events=person["events"],
            )
        )
    return records


async def _pages(database: Any, app_id: str, kind: Kind, query: Any, sort: Any) -> Any:
    """Every page of a search, 3 records at a time: the ids found, the total, the project."""

    async def pages(tx: Tx) -> tuple[list[int], int, Any]:
        fresh = await tx.projects.get(tx.connection, app_id)
        assert fresh is not None
        found: list[int] = []
        cursor, total = None, 0
        while True:
            page = await search(
                tx, project=fresh, kind=kind, filters=[(query, "query")], sort=sort, limit=3,
                cursor=cursor,
            )  # fmt: skip
            found += [_row_id(item) for item in page.items]
            total, cursor = page.total, page.next_cursor
            if cursor is None:
                return found, total, fresh

    return await database.run(pages)


def _row_id(item: Any) -> int:
    for name in ("conversation", "company"):
        if hasattr(item, name):
            return int(getattr(item, name).id)
    return int(item.id)


def _assert_same(query: Any, kind: Kind, records: list[Record], result: Any, data: Any) -> None:
    found, total, fresh = result
    node = parse_query(query, catalog(fresh, kind), now=NOW, events=kind is not Kind.CONVERSATIONS)
    expected = sorted(r.values["id"] for r in records if matches(node, r))
    assert sorted(found) == expected, (query, data)
    assert len(found) == len(set(found)) == total


SETTINGS = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@SETTINGS
@given(people=contacts(), query=queries)
async def test_the_sql_finds_what_the_reference_finds(database, people, query):
    project = await make_project(database)

    async def load(tx: Tx) -> Any:
        config = await tx.projects.get(tx.connection, project.app_id)
        assert config is not None
        return await _store(tx, config.id, people)

    records = await database.run(load)
    result = await _pages(database, project.app_id, Kind.CONTACTS, query,
                          {"field": "metadata.seats"})  # fmt: skip
    _assert_same(query, Kind.CONTACTS, records, result, people)


# --- companies: their deals, linked contacts and company events -------------------------------

STAGES = ["Trial", "Customer", "trial"]


@st.composite
def companies(draw: st.DrawFn) -> list[dict[str, Any]]:
    return [
        {
            "id": f"co{i}{draw(st.sampled_from(['', 'Σ', 'ß']))}",
            "name": draw(st.one_of(st.none(), TEXT)),
            "stage": draw(st.one_of(st.none(), st.sampled_from(STAGES))),
            "metadata": {
                key: draw(values)
                for key, values in {
                    "arr": st.one_of(st.sampled_from([5, 10, 20.5]), st.just("big")),
                    "tier": TEXT,
                }.items()
                if draw(st.booleans())
            },
            "deals": draw(
                st.lists(
                    st.tuples(
                        st.sampled_from(["open", "won", "lost"]),
                        st.sampled_from([None, 500, 20000]),
                    ),
                    max_size=3,
                )
            ),
            "contacts": draw(st.integers(0, 3)),
            "events": draw(
                st.lists(
                    st.tuples(st.sampled_from(EVENT_NAMES), st.sampled_from(DATES)), max_size=3
                )
            ),
        }
        for i in range(draw(st.integers(0, 6)))
    ]


def company_conditions() -> st.SearchStrategy[dict[str, Any]]:
    string_ops = st.sampled_from(["=", "!=", "IN", "NIN", "~", "!~", "^", "$", "exists", "!exists"])
    number_ops = st.sampled_from(["=", "!=", "<", ">", "<=", ">=", "IN", "NIN", "!exists"])

    def condition(field: str, ops: Any, values: Any) -> Any:
        return st.builds(lambda op, value: _condition(field, op, value), ops, values)

    return st.one_of(
        condition("id", string_ops, st.sampled_from(["co1", "CO", "ß", "SS"])),
        condition("name", string_ops, TEXT),
        condition("stage", string_ops, st.sampled_from([*STAGES, "TRIAL"])),
        condition("metadata.arr", number_ops, st.sampled_from([5, 10, 20.5])),
        condition("metadata.tier", string_ops, TEXT),
        condition("deal.status", string_ops, st.sampled_from(["open", "WON", "lo"])),
        condition("deal.amount", number_ops, st.sampled_from([500, 10000, 20000])),
        condition("contact_count", number_ops, st.integers(0, 3)),
        _event_conditions(),
    )


def _condition(field: str, op: str, value: Any) -> dict[str, Any]:
    if op in ("exists", "!exists"):
        return {"field": field, "operator": op}
    if op in ("IN", "NIN"):
        value = [value]
    return {"field": field, "operator": op, "value": value}


def _event_conditions() -> st.SearchStrategy[dict[str, Any]]:
    return st.builds(
        lambda name, op, count, since: {
            "field": "event",
            "event": name,
            "operator": op,
            **({"value": count} if op not in ("exists", "!exists") else {}),
            **({"since": since} if since else {}),
        },
        st.sampled_from(EVENT_NAMES),
        st.sampled_from([">=", "=", "<", "exists", "!exists"]),
        st.integers(0, 2),
        st.sampled_from([None, "-7d", "-30d"]),
    )


def _grouped(leaves: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    return st.recursive(
        leaves,
        lambda children: st.builds(
            lambda op, items: {"operator": op, "value": items},
            st.sampled_from(["AND", "OR"]),
            st.lists(children, min_size=1, max_size=3),
        ),
        max_leaves=6,
    )


async def _store_companies(
    tx: Tx, project_id: int, made: list[dict[str, Any]]
) -> list[tuple[int, Record]]:
    await define_attributes(tx, project_id=project_id, model=Model.COMPANY,
                            types={"arr": AttrType.NUMBER, "tier": AttrType.STRING})  # fmt: skip
    rows = await upsert_companies(tx, project_id=project_id,
                                  names={c["id"]: c["name"] for c in made})  # fmt: skip
    records = []
    for n, company in enumerate(made):
        row = rows[company["id"]]
        await update_company(tx, row.id, {"stage": company["stage"],
                                          "metadata": company["metadata"]})  # fmt: skip
        for d, (status, amount) in enumerate(company["deals"]):
            values = {"status": status, "amount": amount}
            await save_deal(tx, company_id=row.id, deal_id=f"d{d}", row_id=None, values=values)
        for i in range(company["contacts"]):
            contact_id = await insert_contact(
                tx, project_id=project_id, values={"user_id": f"p{n}-{i}", "metadata": {}}
            )
            await link(tx, contact_id=contact_id, company_ids=[row.id])
        for name, at in company["events"]:
            await add_event(tx, {"project_id": project_id, "company_id": row.id,
                                 "scope": "company", "name": name, "occurred_at": at})  # fmt: skip
        values = {
            "id": company["id"],
            "name": company["name"],
            "stage": company["stage"],
            "created_at": row.created_at,
            "contact_count": company["contacts"],
            **{f"metadata.{k}": v for k, v in company["metadata"].items()},
        }
        deals = [{"status": s, "amount": a} for s, a in company["deals"]]
        records.append((row.id, Record(values, related={"deal": deals}, events=company["events"])))
    return records


@SETTINGS
@given(made=companies(), query=_grouped(company_conditions()))
async def test_company_searches_find_what_the_reference_finds(database, made, query):
    project = await make_project(database)

    async def load(tx: Tx) -> Any:
        config = await tx.projects.get(tx.connection, project.app_id)
        assert config is not None
        return await _store_companies(tx, config.id, made)

    records = await database.run(load)
    found, total, fresh = await _pages(database, project.app_id, Kind.COMPANIES, query,
                                       {"field": "metadata.arr", "order": "desc"})  # fmt: skip
    # `id` is the company's own id; the pages hold row ids.
    node = parse_query(query, catalog(fresh, Kind.COMPANIES), now=NOW, events=True)
    expected = sorted(row_id for row_id, record in records if matches(node, record))
    assert sorted(found) == expected, (query, made)
    assert len(found) == len(set(found)) == total


# --- conversations: their contact's and their company's fields --------------------------------


@st.composite
def conversations(draw: st.DrawFn) -> dict[str, Any]:
    people = [
        {
            "name": draw(st.one_of(st.none(), TEXT)),
            "verified": draw(st.booleans()),
            "metadata": {
                key: draw(metadata_values[key]) for key in ("plan", "seats") if draw(st.booleans())
            },
        }
        for _ in range(draw(st.integers(0, 3)))
    ]
    threads = [
        {
            "status": draw(st.sampled_from(["open", "closed"])),
            "contact": draw(st.one_of(st.none(), st.integers(0, len(people) - 1)))
            if people
            else None,
            "company": draw(st.one_of(st.none(), st.sampled_from(sorted(COMPANIES)))),
            "created_at": draw(st.sampled_from(DATES)),
            "updated_at": draw(st.sampled_from(DATES)),
        }
        for _ in range(draw(st.integers(0, 6)))
    ]
    return {"people": people, "threads": threads}


def conversation_conditions() -> st.SearchStrategy[dict[str, Any]]:
    string_ops = st.sampled_from(["=", "!=", "~", "!~", "^", "exists", "!exists"])
    number_ops = st.sampled_from(["=", "!=", "<", ">=", "IN", "NIN", "exists", "!exists"])
    dates = st.sampled_from(["-7d", "-30d", format_date(DATES[2])])

    def condition(field: str, ops: Any, values: Any) -> Any:
        return st.builds(lambda op, value: _condition(field, op, value), ops, values)

    return st.one_of(
        condition(
            "status", st.sampled_from(["=", "!=", "IN"]), st.sampled_from(["open", "CLOSED"])
        ),
        condition("created_at", number_ops, dates),
        condition("updated_at", number_ops, dates),
        condition("contact.name", string_ops, TEXT),
        condition("contact.verified", st.sampled_from(["=", "!=", "!exists"]), st.booleans()),
        condition("contact.metadata.plan", string_ops, TEXT),
        condition("contact.metadata.seats", number_ops, st.sampled_from([0, 1, 10])),
        condition("company.stage", string_ops, st.sampled_from(["trial", "CUSTOMER"])),
        condition("company.metadata.arr", number_ops, st.sampled_from([5, 10])),
    )


async def _store_conversations(tx: Tx, project_id: int, made: dict[str, Any]) -> list[Record]:
    await define_attributes(tx, project_id=project_id, model=Model.CONTACT, types=CONTACT_TYPES)
    await define_attributes(
        tx, project_id=project_id, model=Model.COMPANY, types={"arr": AttrType.NUMBER}
    )
    rows = await upsert_companies(tx, project_id=project_id, names=dict.fromkeys(COMPANIES))
    companies = {}
    for external_id, values in COMPANIES.items():
        await update_company(tx, rows[external_id].id, values)
        companies[external_id] = {
            "stage": values["stage"],
            **{f"metadata.{k}": v for k, v in values["metadata"].items()},
        }
    people = []
    for i, person in enumerate(made["people"]):
        contact_id = await insert_contact(tx, project_id=project_id, values={
            "user_id": f"u{i}", "name": person["name"], "verified": person["verified"],
            "metadata": person["metadata"]})  # fmt: skip
        people.append((contact_id, {
            "name": person["name"], "verified": person["verified"],
            **{f"metadata.{k}": v for k, v in person["metadata"].items()}}))  # fmt: skip
    records = []
    for thread in made["threads"]:
        contact = people[thread["contact"]] if thread["contact"] is not None else None
        company = thread["company"]
        row = await start_conversation(tx, {
            "project_id": project_id, "status": thread["status"],
            "contact_id": contact[0] if contact else None,
            "company_id": rows[company].id if company else None,
            "created_at": thread["created_at"], "last_message_at": thread["updated_at"],
        })  # fmt: skip
        values = {key: thread[key] for key in ("status", "created_at", "updated_at")}
        related = {"contact": [contact[1]] if contact else [],
                   "company": [companies[company]] if company else []}  # fmt: skip
        records.append(Record({**values, "id": row.id}, related))
    return records


@SETTINGS
@given(made=conversations(), query=_grouped(conversation_conditions()))
async def test_conversation_searches_find_what_the_reference_finds(database, made, query):
    project = await make_project(database)

    async def load(tx: Tx) -> Any:
        config = await tx.projects.get(tx.connection, project.app_id)
        assert config is not None
        return await _store_conversations(tx, config.id, made)

    records = await database.run(load)
    result = await _pages(database, project.app_id, Kind.CONVERSATIONS, query,
                          {"field": "updated_at", "order": "desc"})  # fmt: skip
    _assert_same(query, Kind.CONVERSATIONS, records, result, made)

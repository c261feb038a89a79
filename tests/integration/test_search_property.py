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
from hal.db.store.companies import add_event, link, update_company, upsert_companies
from hal.db.store.people import insert_contact
from hal.domain.attributes import AttrType, Model, format_date
from hal.domain.search import Record, matches, parse_query
from hal.services.search import catalog, search_contacts
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


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(people=contacts(), query=queries)
async def test_the_sql_finds_what_the_reference_finds(database, people, query):
    project = await make_project(database)

    async def load(tx: Tx) -> Any:
        config = await tx.projects.get(tx.connection, project.app_id)
        assert config is not None
        return config, await _store(tx, config.id, people)

    _, records = await database.run(load)

    async def pages(tx: Tx) -> tuple[list[int], int, Any]:
        fresh = await tx.projects.get(tx.connection, project.app_id)
        assert fresh is not None
        found: list[int] = []
        cursor, total = None, 0
        while True:
            page = await search_contacts(
                tx, project=fresh, query=query, sort={"field": "metadata.seats"}, limit=3,
                cursor=cursor,
            )  # fmt: skip
            found += [contact.id for contact in page.items]
            total, cursor = page.total, page.next_cursor
            if cursor is None:
                return found, total, fresh

    found, total, fresh = await database.run(pages)
    node = parse_query(query, catalog(fresh, Model.CONTACT), now=NOW, events=True)
    expected = sorted(r.values["id"] for r in records if matches(node, r))
    assert sorted(found) == expected, (query, people)
    assert len(found) == len(set(found)) == total

"""identify's companies upserted and linked (`upsert_link_and_read`): on PostgreSQL, one company in
one statement (a data-modifying WITH); elsewhere, and for several, `upsert_companies` then
`link`. Both say the same: which company is new, and which link."""

from __future__ import annotations

from typing import Any

from hal.db.engine import Database, Tx
from hal.db.store.companies import linked_companies, upsert_link_and_read
from hal.db.store.people import insert_contact
from tests.factories import make_project, unique


async def _contact(tx: Tx, project_id: int) -> int:
    return await insert_contact(tx, project_id=project_id, values={"user_id": unique("u")})


async def test_one_company_upserted_and_linked(database: Database):
    project = await make_project(database)
    company = unique("co")
    sent: list[str] = []

    async def work(tx: Tx) -> list[Any]:
        config = await tx.project(project.app_id)
        ann, bo = await _contact(tx, config.id), await _contact(tx, config.id)
        outcomes = []
        for contact_id in (ann, ann, bo):
            with database.observe(sent.append):
                rows, linked, _ = await upsert_link_and_read(
                    tx, project_id=config.id, names={company: "Acme"}, contact_id=contact_id
                )
            row = rows[company]
            outcomes.append((row.name, row.created, linked == {row.id}))
        both = [await linked_companies(tx, contact_id) for contact_id in (ann, bo)]
        assert [[row.external_id for row in rows] for rows in both] == [[company], [company]]
        return outcomes

    assert await database.run(work) == [
        ("Acme", True, True),  # made and linked
        ("Acme", False, False),  # already both
        ("Acme", False, True),  # another contact's link
    ]
    assert len(sent) == (3 if database.is_postgres else 6), sent


async def test_several_companies_upserted_and_linked(database: Database):
    project = await make_project(database)
    names = {unique("co"): "A", unique("co"): None}

    async def work(tx: Tx) -> tuple[set[str], set[int], set[int]]:
        config = await tx.project(project.app_id)
        contact_id = await _contact(tx, config.id)
        rows, linked, _ = await upsert_link_and_read(
            tx, project_id=config.id, names=names, contact_id=contact_id
        )
        _, again, _ = await upsert_link_and_read(
            tx, project_id=config.id, names=names, contact_id=contact_id
        )
        return {k for k, row in rows.items() if row.created}, linked, again

    created, linked, again = await database.run(work)
    assert created == set(names) and len(linked) == 2 and again == set()


async def test_the_contacts_other_companies_read_with_the_upsert(database: Database):
    """PostgreSQL reads the contact's other companies in the statement that upserts and links
    one: by external id, as `linked_companies` reads them less the named one, as they were
    before the statement; elsewhere (and for several companies) none are read."""
    project = await make_project(database)
    first, second, named = (unique(prefix) for prefix in ("c", "a", "b"))

    async def work(tx: Tx) -> tuple[list[str] | None, list[str] | None, list[str]]:
        config = await tx.project(project.app_id)
        contact_id = await _contact(tx, config.id)
        for company in (first, second):
            await upsert_link_and_read(
                tx, project_id=config.id, names={company: None}, contact_id=contact_id
            )
        names: dict[str, str | None] = {named: None}
        _, _, others = await upsert_link_and_read(
            tx, project_id=config.id, names=names, contact_id=contact_id
        )
        _, _, again = await upsert_link_and_read(
            tx, project_id=config.id, names=names, contact_id=contact_id
        )
        _, _, several = await upsert_link_and_read(
            tx, project_id=config.id, names={first: None, named: None}, contact_id=contact_id
        )
        assert several is None
        every = [row.external_id for row in await linked_companies(tx, contact_id)]
        shown = [[row.external_id for row in found] if found is not None else None
                 for found in (others, again)]  # fmt: skip
        return shown[0], shown[1], every

    others, again, every = await database.run(work)
    assert every == sorted([first, second, named])
    if database.is_postgres:
        assert others == again == sorted([first, second])  # the named one is not an other
    else:
        assert others is again is None

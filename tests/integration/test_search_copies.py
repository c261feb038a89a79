"""The case-folded copies searches compare with are written with every contact and company
write (the one write path), so a string condition meets what Python's case folding says."""

from __future__ import annotations

from tests.factories import unique


async def test_every_write_keeps_the_case_folded_copies(widget, team, project, inspect):
    company = unique("ACME")
    made = await widget.identify(
        project,
        user_id=unique("U"),
        name="Straße",
        metadata={"plan": "PRO", "seats": 3},
        company={"id": company, "name": "Ünïcorn", "stage": "Trial", "metadata": {"tier": "GOLD"}},
    )
    assert made.status_code == 200, made.text
    [contact] = await inspect.contacts(project.app_id)
    assert contact.search_name == "strasse"
    assert contact.search_user_id == contact.user_id.casefold()
    assert contact.search_metadata == {"plan": "pro"}  # strings only
    [row] = await inspect.companies(project.app_id)
    assert (row.search_external_id, row.search_name, row.search_stage) == (
        company.casefold(), "ünïcorn", "trial"
    )  # fmt: skip
    assert row.search_metadata == {"tier": "gold"}

    edited = await team.patch(
        f"/contacts/{contact.id}", {"name": "ÉLAN", "metadata": {"plan": None}}
    )
    assert edited.status_code == 200, edited.text
    staged = await team.patch(f"/companies/{company}", {"stage": "Customer"})
    assert staged.status_code == 200, staged.text
    [contact] = await inspect.contacts(project.app_id)
    [row] = await inspect.companies(project.app_id)
    assert (contact.search_name, contact.search_metadata) == ("élan", {})
    assert row.search_stage == "customer"

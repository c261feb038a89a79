"""What an import chunk knows without asking again and the writes it holds
(db/store/lookahead.py): people and companies as the chunk's rows left them, a write merged
into the held row, what it cannot answer, and a row rolled back taking back what it did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from hal.db.store.base import CompanyRow, ContactRow
from hal.db.store.lookahead import Lookahead, NeedsDatabase

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def company(id_: int, external_id: str, **values: object) -> CompanyRow:
    fields: dict[str, Any] = {"name": None, "stage": None, "stage_source": None, "metadata_": {},
              "guarded": False, "version": 1, "created_at": NOW, **values}  # fmt: skip
    return CompanyRow(id=id_, external_id=external_id, **fields)


def contact(id_: int, user_id: str | None, email: str | None) -> ContactRow:
    return ContactRow(id=id_, user_id=user_id, email=email, email_normalized=email, name=None,
                      metadata_={}, verified=False, email_verified=False, created_at=NOW,
                      last_seen_at=NOW, version=1)  # fmt: skip


def reading(*contacts: ContactRow, named: set[tuple[str, str]] = frozenset()) -> Lookahead:  # type: ignore[assignment]
    ahead = Lookahead(contacts={c.id: c for c in contacts}, people=set(named))
    for c in contacts:
        if c.user_id:
            ahead.by_user_id[c.user_id] = c.id
            ahead.people.add(("user_id", c.user_id))
        if c.email_normalized:
            ahead.by_email[c.email_normalized] = c.id
            ahead.people.add(("email", c.email_normalized))
    ahead.linked = set(ahead.contacts)
    return ahead


def test_a_person_is_found_by_either_key_and_a_merged_email_reaches_its_contact():
    ahead = reading(contact(1, "u1", "a@x.com"), contact(2, None, "b@x.com"),
                    named={("email", "old@x.com")})  # fmt: skip
    ahead.aliases["old@x.com"] = 2
    assert ahead.people_of("u1", None) == ([ahead.contacts[1]], None)
    assert ahead.people_of("u1", "b@x.com") == ([ahead.contacts[1], ahead.contacts[2]], None)
    assert ahead.people_of(None, "old@x.com") == ([ahead.contacts[2]], 2)


def test_a_key_no_row_named_is_asked_of_the_database():
    ahead = reading(contact(1, "u1", None), named={("user_id", "u2")})
    assert ahead.people_of("u2", None) == ([], None)  # named, and no contact has it
    with pytest.raises(NeedsDatabase):
        ahead.people_of("u3", None)


def test_a_contact_the_chunk_made_or_changed_is_found_by_its_new_keys():
    ahead = reading(named={("user_id", "u1"), ("email", "a@x.com")})
    ahead.contact_created(10, {"user_id": "u1", "metadata": {}, "verified": False,
                               "email_verified": False}, NOW)  # fmt: skip
    assert [c.id for c in ahead.people_of("u1", "a@x.com")[0]] == [10]
    ahead.contact_written(10, {"email": "A@x.com", "email_normalized": "a@x.com", "name": "Ann"})
    assert ahead.by_email == {"a@x.com": 10}
    assert ahead.new_contacts[10]["name"] == "Ann"  # merged into its held insert
    assert ahead.contact_updates == {}


def test_an_update_of_a_read_contact_is_held_merged():
    ahead = reading(contact(1, "u1", None))
    ahead.contact_written(1, {"name": "Ann"})
    ahead.contact_written(1, {"version": 2})
    assert ahead.contact_updates == {1: {"name": "Ann", "version": 2}}
    assert (ahead.contacts[1].name, ahead.contacts[1].version) == ("Ann", 2)
    with pytest.raises(NeedsDatabase):
        ahead.contact_written(99, {"name": "Who"})


def test_companies_are_known_or_known_missing_and_read_as_written():
    ahead = Lookahead(companies={"acme": company(1, "acme"), "beta": None},
                      company_ids={1: "acme"})  # fmt: skip
    assert ahead.known_companies(["acme", "beta"]) == {"acme": company(1, "acme"), "beta": None}
    with pytest.raises(NeedsDatabase):
        ahead.known_companies(["gamma"])
    ahead.company_written(
        1, {"name": "Acme", "metadata": {"tier": "gold"}, "stage_updated_at": NOW}
    )
    ahead.guarded([1])
    row = ahead.companies["acme"]
    assert row is not None
    assert (row.name, row.metadata_, row.guarded) == ("Acme", {"tier": "gold"}, True)
    assert ahead.company_updates[1]["guarded"] is True


def test_links_are_held_once_each_and_only_for_contacts_whose_links_are_known():
    ahead = reading(contact(7, "u7", None))
    ahead.links = {(7, 1)}
    assert ahead.link(7, [1, 2], NOW) == {2}
    assert ahead.link(7, [2, 3], NOW) == {3}
    assert sorted(ahead.new_links) == [(7, 2), (7, 3)]
    with pytest.raises(NeedsDatabase):
        ahead.link(8, [1], NOW)


def test_a_rolled_back_row_takes_back_everything_it_did():
    ahead = reading(contact(1, "u1", None), named={("user_id", "u2")})
    ahead.companies = {"acme": company(1, "acme"), "beta": None}
    ahead.company_ids = {1: "acme"}
    ahead.link(1, [1], NOW)
    ahead.save()
    ahead.contact_created(2, {"user_id": "u2", "metadata": {}, "verified": False,
                              "email_verified": False}, NOW)  # fmt: skip
    ahead.contact_written(1, {"name": "Changed"})
    ahead.company_created(company(2, "beta", created=True), {"external_id": "beta"})
    ahead.company_written(1, {"name": "Acme"})
    ahead.link(2, [2], NOW)
    ahead.stage_changed({"company_id": 2}, {"company_id": 2})
    ahead.restore()
    assert sorted(ahead.contacts) == [1] and ahead.contacts[1].name is None
    assert ahead.by_user_id == {"u1": 1} and ahead.people_of("u2", None) == ([], None)
    assert ahead.companies == {"acme": company(1, "acme"), "beta": None}
    assert ahead.new_contacts == {} and ahead.contact_updates == {}
    assert ahead.new_companies == {} and ahead.company_updates == {}
    assert list(ahead.new_links) == [(1, 1)]
    assert ahead.stage_changes == [] and ahead.events == []


def test_a_released_row_keeps_what_it_did():
    ahead = reading(contact(1, "u1", None))
    ahead.save()
    ahead.contact_written(1, {"name": "Ann"})
    ahead.release()
    ahead.restore()  # nothing journaled any more
    assert ahead.contact_updates == {1: {"name": "Ann"}}

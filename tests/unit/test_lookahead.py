"""What an import chunk knows without asking again (db/store/lookahead.py): a key is known
absent only until a row names it, a company is read as the chunk last wrote it, and a row
rolled back takes back what it did."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from hal.db.store.base import CompanyRow
from hal.db.store.lookahead import Lookahead

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def company(id_: int, external_id: str, **values: object) -> CompanyRow:
    fields: dict[str, Any] = {"name": None, "stage": None, "stage_source": None, "metadata_": {},
              "guarded": False, "version": 1, "created_at": NOW, **values}  # fmt: skip
    return CompanyRow(id=id_, external_id=external_id, **fields)


def test_a_key_is_known_absent_only_until_a_row_names_it():
    ahead = Lookahead(absent={("user_id", "u1"), ("email", "a@x.com")})
    assert ahead.unknown_person("u1", "a@x.com") is True
    assert ahead.unknown_person("u1", None) is False  # the first row may have made it


def test_a_person_with_one_known_key_is_looked_up():
    ahead = Lookahead(absent={("user_id", "u1")})
    assert ahead.unknown_person("u1", "taken@x.com") is False


def test_companies_are_known_only_when_all_of_them_are():
    ahead = Lookahead(companies={"acme": company(1, "acme")})
    assert ahead.known_companies(["acme"]) == {"acme": company(1, "acme")}
    assert ahead.known_companies(["acme", "beta"]) is None


def test_a_company_is_read_as_written():
    ahead = Lookahead(companies={"acme": company(1, "acme")})
    ahead.company_written(
        1, {"name": "Acme", "metadata": {"tier": "gold"}, "stage_updated_at": NOW}
    )
    ahead.guarded({1})
    row = ahead.companies["acme"]
    assert (row.name, row.metadata_, row.guarded) == ("Acme", {"tier": "gold"}, True)


def test_links_are_held_once_each():
    ahead = Lookahead(created_contacts={7})
    assert ahead.link_later(7, [1, 2], NOW) == {1, 2}
    assert ahead.link_later(7, [2, 3], NOW) == {3}
    assert sorted(ahead.links) == [(7, 1), (7, 2), (7, 3)]


def test_a_rolled_back_row_takes_back_its_companies_contacts_and_links():
    ahead = Lookahead(companies={"acme": company(1, "acme")}, created_contacts={7})
    ahead.link_later(7, [1], NOW)
    ahead.save()
    ahead.companies["beta"] = company(2, "beta")
    ahead.created_contacts.add(8)
    ahead.link_later(8, [2], NOW)
    ahead.restore()
    assert list(ahead.companies) == ["acme"]
    assert ahead.created_contacts == {7}
    assert list(ahead.links) == [(7, 1)]

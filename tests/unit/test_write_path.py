"""One write path for the CRM tables: no module outside `hal.db.store` builds an INSERT,
UPDATE or DELETE of them, or an ORM object of them (an ORM flush of one is refused at run
time too, see `hal.db.engine`)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from hal.db.models import CRM_MODELS

SOURCE = Path(__file__).resolve().parents[2] / "src" / "hal"
STORE = SOURCE / "db" / "store"
MIGRATIONS = SOURCE / "db" / "migrations"
MODELS = {model.__name__ for model in CRM_MODELS}
TABLES = {model.__tablename__ for model in CRM_MODELS}
# The names hal.db.store.base gives the CRM tables' handles.
HANDLES = {"CONTACTS", "COMPANIES", "LINKS", "VISITORS", "STAGE_CHANGES", "DEALS", "EVENTS",
           "CONVERSATIONS", "MESSAGES"}  # fmt: skip
DML = {"insert", "update", "delete"}


def _names_crm_table(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in HANDLES or node.id in MODELS
    if isinstance(node, ast.Attribute) and node.attr == "__table__":
        return _names_crm_table(node.value)
    if isinstance(node, ast.Constant):
        return node.value in TABLES
    return False


def crm_writes(tree: ast.AST) -> list[str]:
    """Where a module builds a write of a CRM table: `insert(CONTACTS)`, `update(Contact)`,
    `CONTACTS.delete()`, `Contact(...)` (an ORM row to add), `text("DELETE FROM contacts")`."""
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else getattr(func, "attr", None)
        if name in DML and node.args and _names_crm_table(node.args[0]):
            found.append(f"line {node.lineno}: {name}({ast.unparse(node.args[0])})")
        elif name in DML and isinstance(func, ast.Attribute) and _names_crm_table(func.value):
            found.append(f"line {node.lineno}: {ast.unparse(func)}()")
        elif isinstance(func, ast.Name) and func.id in MODELS:
            found.append(f"line {node.lineno}: {func.id}(...)")
        elif name == "text" and node.args and isinstance(node.args[0], ast.Constant):
            sql = str(node.args[0].value).lower()
            if any(f"{verb} {table}" in sql for verb in ("into", "update", "from")
                   for table in TABLES) and not sql.lstrip().startswith("select"):  # fmt: skip
                found.append(f"line {node.lineno}: {sql[:60]}")
    return found


def _modules() -> list[Path]:
    return [
        path
        for path in sorted(SOURCE.rglob("*.py"))
        if STORE not in path.parents and MIGRATIONS not in path.parents
    ]


@pytest.mark.parametrize("path", _modules(), ids=lambda p: str(p.relative_to(SOURCE)))
def test_no_module_outside_the_store_writes_a_crm_table(path: Path):
    assert crm_writes(ast.parse(path.read_text(), str(path))) == []


@pytest.mark.parametrize(
    "source",
    [
        "insert(CONTACTS).values(x=1)",
        "update(Company).where(Company.id == 1)",
        "delete(Event.__table__)",
        "EVENTS.delete().where(True)",
        "session.add(Conversation(project_id=1))",
        "text('DELETE FROM messages WHERE id = 1')",
    ],
)
def test_the_check_finds_each_kind_of_write(source: str):
    assert crm_writes(ast.parse(source)) != []


def test_the_check_lets_reads_and_other_tables_through():
    source = "select(Contact).where(Contact.id == 1); insert(AUDIT); update(ENDPOINTS)"
    assert crm_writes(ast.parse(source)) == []


def test_the_repeat_reads_rows_in_their_fields_order():
    """db/store/people.returning_visitor builds its rows by position: each row type's fields
    are its columns, in the same order."""
    from dataclasses import fields

    from hal.db.store.base import (
        COMPANY_COLUMNS,
        CONTACT_COLUMNS,
        CompanyRow,
        ContactRow,
        VisitorRow,
    )
    from hal.db.store.people import _VISITOR_COLUMNS

    def names(row_type: type) -> list[str]:
        return [f.name.rstrip("_") for f in fields(row_type) if f.name != "created"]

    assert names(VisitorRow) == [c.name for c in _VISITOR_COLUMNS][:-1]
    assert _VISITOR_COLUMNS[-1].name == "created_at"
    assert names(ContactRow) == [c.name for c in CONTACT_COLUMNS]
    assert names(CompanyRow) == [c.name for c in COMPANY_COLUMNS]

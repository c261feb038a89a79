"""A prepared insert that asks for no rows gets none back on either engine: PostgreSQL's
implicit `RETURNING` of the primary key would send a call's several rows (a transaction's
changes) through SQLAlchemy's execution, which then also joins and ends the transaction."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.dml import Insert

from hal.db import changelog
from hal.db.prepared import Prepared
from hal.db.store import companies

DIALECTS = [postgresql.asyncpg.dialect(), sqlite.aiosqlite.dialect()]


class _Tx:
    def __init__(self, dialect: Dialect) -> None:
        self.is_postgres = dialect.name == "postgresql"


def _statements(dialect: Dialect) -> dict[str, Prepared]:
    tx = _Tx(dialect)
    return {
        "changelog._INSERT": changelog._INSERT,
        "changelog._INSERT_NUMBERED": changelog._INSERT_NUMBERED,
        "companies._insert_stage_change": companies._insert_stage_change(tx),  # type: ignore[arg-type]
    }


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_inserts_without_returning_return_nothing(dialect):
    for name, statement in _statements(dialect).items():
        insert = statement.statement
        assert isinstance(insert, Insert) and not insert._returning, name
        columns = [c.key for c in insert.table.columns if c.key not in ("id", "seq")]
        form = statement.form(dialect, dict.fromkeys(columns))
        assert not form.keys, (name, form.sql)
        assert "RETURNING" not in form.sql, (name, form.sql)

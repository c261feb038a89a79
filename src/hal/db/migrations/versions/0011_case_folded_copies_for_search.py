"""case-folded copies for search: what string conditions compare with, computed by the same
Python as the searches' meaning (hal.domain.search.fold), for contacts and companies

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 05:14:17.602869
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The contacts' name and user_id copies exist already (lower-cased until now).
    new = {"companies": _SOURCES["companies"], "contacts": ["search_email"]}
    for table, copies in new.items():
        with op.batch_alter_table(table, schema=None) as batch_op:
            for copy in copies:
                batch_op.add_column(sa.Column(copy, SEARCH_KEY, nullable=True))
            batch_op.add_column(
                sa.Column(
                    "search_metadata",
                    hal.db.types.JSONDocument,
                    nullable=False,
                    server_default="{}",
                )
            )
    _fold_existing_rows()


def downgrade() -> None:
    with op.batch_alter_table("contacts", schema=None) as batch_op:
        batch_op.drop_column("search_metadata")
        batch_op.drop_column("search_email")

    with op.batch_alter_table("companies", schema=None) as batch_op:
        batch_op.drop_column("search_metadata")
        batch_op.drop_column("search_stage")
        batch_op.drop_column("search_name")
        batch_op.drop_column("search_external_id")


SEARCH_KEY = sa.String(length=255).with_variant(sa.String(length=255, collation="C"), "postgresql")

# The columns each table's folded copies are made from.
_SOURCES = {
    "contacts": {
        "search_name": "name",
        "search_user_id": "user_id",
        "search_email": "email_normalized",
    },
    "companies": {
        "search_external_id": "external_id",
        "search_name": "name",
        "search_stage": "stage",
    },
}


def _fold_existing_rows() -> None:
    """Fill the copies of every row written before, 1,000 rows at a time (the contacts' name
    and user_id copies were lower-cased until now; they are case-folded from here on)."""
    import json

    from hal.domain.search import fold_text, folded

    connection = op.get_bind()
    for table, copies in _SOURCES.items():
        sources = ", ".join(copies.values())
        page = sa.text(
            f"SELECT id, {sources}, metadata FROM {table} WHERE id > :after ORDER BY id LIMIT 1000"
        )
        sets = ", ".join(f"{copy} = :{copy}" for copy in copies)
        write = sa.text(
            f"UPDATE {table} SET {sets}, search_metadata = :search_metadata WHERE id = :id"
        ).bindparams(sa.bindparam("search_metadata", type_=hal.db.types.JSONDocument))
        after = 0
        while rows := connection.execute(page, {"after": after}).mappings().all():
            after = rows[-1]["id"]
            updates = []
            for row in rows:
                metadata = row["metadata"]
                if not isinstance(metadata, dict):
                    metadata = json.loads(metadata) if metadata else {}
                values = {copy: fold_text(row[source]) for copy, source in copies.items()}
                updates.append({**values, "search_metadata": folded(metadata), "id": row["id"]})
            connection.execute(write, updates)

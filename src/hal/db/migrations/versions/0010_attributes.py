"""attributes: every metadata key of contacts and companies gets a type, existing keys the
type most of their stored values have

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 04:34:02.742706
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attributes",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("model", sa.String(length=8), nullable=False),
        sa.Column("key", sa.String(length=64), nullable=False),
        sa.Column("type", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("label", sa.String(length=255), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("options", hal.db.types.JSONDocument, nullable=False),
        sa.Column("archived", sa.Boolean(), nullable=False),
        sa.Column("created_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "model", "key", name="uq_attributes_key"),
        sqlite_autoincrement=True,
    )
    _define_existing_keys()


def downgrade() -> None:
    op.drop_table("attributes")


def _define_existing_keys() -> None:
    """Data written before attributes had types: each key is defined with the type of most
    of its values (hal.domain.attributes.majority_type), read 1,000 rows at a time."""
    from datetime import UTC, datetime

    from hal.domain.attributes import majority_type

    connection = op.get_bind()
    values: dict[tuple[int, str, str], list[object]] = {}
    for model, source in (("contact", "contacts"), ("company", "companies")):
        page = sa.text(
            f"SELECT id, project_id, metadata FROM {source} WHERE id > :after ORDER BY id"
            " LIMIT 1000"
        )
        after = 0
        while rows := connection.execute(page, {"after": after}).all():
            after = rows[-1].id
            for _, project_id, metadata in rows:
                document = metadata if isinstance(metadata, dict) else _json(metadata)
                for key, value in document.items():
                    bucket = values.setdefault((project_id, model, key), [])
                    if len(bucket) < 10_000:  # enough to tell the type most values have
                        bucket.append(value)
    now = datetime.now(UTC)
    definitions = [
        {"project_id": project_id, "model": model, "key": key, "type": str(type_),
         "source": "auto", "options": [], "archived": False, "created_at": now}
        for (project_id, model, key), sample in sorted(values.items())
        if len(key) <= 64 and (type_ := majority_type(key, sample)) is not None
    ]  # fmt: skip
    if definitions:
        names = ("project_id", "model", "key", "type", "source", "archived")
        table = sa.table(
            "attributes",
            *(sa.column(name) for name in names),
            sa.column("options", hal.db.types.JSONDocument),
            sa.column("created_at", hal.db.types.UTCDateTime(timezone=True)),
        )
        op.bulk_insert(table, definitions)


def _json(text: object) -> dict[str, object]:
    import json

    loaded = json.loads(str(text)) if text else {}
    return loaded if isinstance(loaded, dict) else {}

"""saved views: a team's named searches of contacts, companies or conversations

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-05 06:09:43.984154
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "views",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("model", sa.String(length=16), nullable=False),
        sa.Column("query", hal.db.types.JSONDocument, nullable=True),
        sa.Column("sort", hal.db.types.JSONDocument, nullable=True),
        sa.Column("created_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("project_id", "model", "name", name="uq_views_name"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("views")

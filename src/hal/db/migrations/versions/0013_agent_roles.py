"""agent roles: `agent` or `admin`; each project's earliest agent becomes its admin

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-05 06:15:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.add_column(
            sa.Column("role", sa.String(length=8), server_default="agent", nullable=False)
        )
    # A project always keeps one admin: before roles every agent could do everything the
    # inbox offered, so the earliest one of each project becomes its admin.
    op.execute(
        "UPDATE agents SET role = 'admin' WHERE id IN "
        "(SELECT MIN(id) FROM agents GROUP BY project_id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("agents") as batch:
        batch.drop_column("role")

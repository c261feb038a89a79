"""api tokens: a label, and when each was last used

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-05 06:25:53.193667
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.add_column(sa.Column("label", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column("last_used_at", hal.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        batch_op.drop_column("last_used_at")
        batch_op.drop_column("label")

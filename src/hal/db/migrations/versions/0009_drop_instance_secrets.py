"""instance_secrets goes: nothing reads or writes it

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 03:52:15.012999
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_table("instance_secrets")


def downgrade() -> None:
    op.create_table(
        "instance_secrets",
        sa.Column("name", sa.VARCHAR(length=64), nullable=False),
        sa.Column("value", sa.VARCHAR(length=255), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )

"""event counts read by project, name and time: a search counts every contact's events of
a name since a time in one grouped range of this index (replaces 0015's per-contact one)

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-05 07:20:25.382147
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.drop_index("ix_events_contact_name_time", table_name="events")
    op.create_index(
        "ix_events_project_name_time", "events", ["project_id", "name", "occurred_at", "contact_id"]
    )


def downgrade() -> None:
    op.drop_index("ix_events_project_name_time", table_name="events")
    op.create_index("ix_events_contact_name_time", "events", ["contact_id", "name", "occurred_at"])

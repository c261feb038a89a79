"""search indexes: a contact's event count by name since a time is read from an index on
events (contact_id, name, occurred_at) alone (bench/search.py: 20x faster on SQLite, 4x on
PostgreSQL at 1,000,000 events)

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-05 06:30:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_contact_name_time", "events", ["contact_id", "name", "occurred_at"])


def downgrade() -> None:
    op.drop_index("ix_events_contact_name_time", table_name="events")

"""SQLite: a change's insert numbers it from its project's counter, which a trigger advances
(one statement a transaction instead of two; PostgreSQL numbers changes after the commit)

Revision ID: 0020
Revises: 0019
Create Date: 2026-12-06 02:45:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020"
down_revision: str | None = "0019"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The counter follows each change inserted with an id past it (db/changelog.py).
_TRIGGER = """
CREATE TRIGGER changes_advance_counter AFTER INSERT ON changes
WHEN NEW.id IS NOT NULL
BEGIN
    UPDATE projects SET last_change_id = NEW.id
    WHERE id = NEW.project_id AND last_change_id < NEW.id;
END
"""


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute(_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TRIGGER changes_advance_counter")

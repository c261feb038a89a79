"""An id of a deleted or merged row is never given to a new row: SQLite tables get
AUTOINCREMENT keys (PostgreSQL's identities never went back). A suppression's rows are
grouped by person (an erased person's merge aliases are suppressed with them).

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = (
    "projects",
    "agents",
    "api_tokens",
    "audit_log",
    "changes",
    "companies",
    "contacts",
    "suppressions",
    "webhook_endpoints",
    "agent_sessions",
    "deals",
    "stage_changes",
    "visitors",
    "webhook_messages",
    "conversations",
    "events",
    "webhook_attempts",
    "messages",
)

# Ids that rows still name after their own row went: each table's sequence starts past them,
# so a row deleted before this upgrade cannot hand its id on either.
_STILL_NAMED = {
    "contacts": (
        "SELECT max(from_contact_id) FROM contact_merges",
        "SELECT max(contact_id) FROM changes",
        "SELECT max(contact_id) FROM webhook_messages",
    ),
    "visitors": (
        "SELECT max(visitor_row_id) FROM changes",
        "SELECT max(visitor_row_id) FROM webhook_messages",
    ),
    "conversations": (
        "SELECT max(CAST(json_extract(data, '$.conversation_id') AS INTEGER)) FROM changes",
        "SELECT max(CAST(json_extract(data, '$.id') AS INTEGER)) FROM changes"
        " WHERE type LIKE 'conversation.%'",
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("suppressions") as batch:
        batch.add_column(sa.Column("person", sa.String(64), nullable=True))
    op.execute("UPDATE suppressions SET person = coalesce(user_id_hash, email_hash)")
    connection = op.get_bind()
    if connection.dialect.name != "sqlite":
        return
    # hal.db.migrate turns foreign keys off around the migration, so dropping the old table
    # cascades nothing.
    for table in TABLES:
        with op.batch_alter_table(
            table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
        ):
            pass
    for table in TABLES:
        queries = (f"SELECT max(id) FROM {table}", *_STILL_NAMED.get(table, ()))
        if table == "changes":
            queries = ("SELECT max(seq) FROM changes",)
        highest = max((connection.execute(sa.text(q)).scalar() or 0) for q in queries)
        connection.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
        connection.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
            {"t": table, "seq": highest},
        )


def downgrade() -> None:
    # AUTOINCREMENT keys serve the older version as they are.
    with op.batch_alter_table("suppressions") as batch:
        batch.drop_column("person")

"""privacy and data hygiene: erasure, suppressions, merges, retention settings, audit log

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
When = hal.db.types.UTCDateTime(timezone=True)
Document = hal.db.types.JSONDocument
SearchKey = sa.String(255).with_variant(sa.String(255, collation="C"), "postgresql")

# The contact a change or a webhook message speaks of, read from its data (ids only for
# contact.merged and contact.deleted, which name no person's data).
_CONTACT_OF = {
    "postgresql": (
        "CASE WHEN type IN ('contact.created', 'contact.updated') THEN ({doc}->>'id')::bigint"
        " WHEN type IN ('contact.merged', 'contact.deleted') THEN NULL"
        " ELSE ({doc}->>'contact_id')::bigint END"
    ),
    "sqlite": (
        "CASE WHEN type IN ('contact.created', 'contact.updated')"
        " THEN CAST(json_extract({doc}, '$.id') AS INTEGER)"
        " WHEN type IN ('contact.merged', 'contact.deleted') THEN NULL"
        " ELSE CAST(json_extract({doc}, '$.contact_id') AS INTEGER) END"
    ),
}


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(sa.Column("suppression_key", sa.String(128), nullable=True))
        batch.add_column(sa.Column("event_retention_days", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("conversation_retention_days", sa.Integer(), nullable=True))
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(sa.Column("erased_at", When, nullable=True))
    with op.batch_alter_table("changes") as batch:
        batch.add_column(sa.Column("contact_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("visitor_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_changes_contact", "changes", ["project_id", "contact_id"])
    op.create_index("ix_changes_visitor", "changes", ["project_id", "visitor_id"])
    with op.batch_alter_table("webhook_messages") as batch:
        batch.add_column(sa.Column("contact_id", sa.BigInteger(), nullable=True))
        batch.add_column(sa.Column("visitor_id", sa.BigInteger(), nullable=True))
    op.create_index("ix_webhook_messages_contact", "webhook_messages", ["contact_id"])
    op.create_index("ix_webhook_messages_visitor", "webhook_messages", ["visitor_id"])
    dialect = op.get_bind().dialect.name
    contact_of = _CONTACT_OF["postgresql" if dialect == "postgresql" else "sqlite"]
    op.execute(f"UPDATE changes SET contact_id = {contact_of.format(doc='data')}")
    payload_data = (
        "(payload->'data')" if dialect == "postgresql" else "json_extract(payload, '$.data')"
    )
    op.execute(f"UPDATE webhook_messages SET contact_id = {contact_of.format(doc=payload_data)}")
    op.create_index("ix_events_project_received", "events", ["project_id", "received_at"])
    op.create_index("ix_contacts_erased", "contacts", ["erased_at"])
    op.create_table(
        "suppressions",
        sa.Column("id", Id, nullable=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("user_id_hash", sa.String(64), nullable=True),
        sa.Column("email_hash", sa.String(64), nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_suppressions_user_id", "suppressions", ["project_id", "user_id_hash"])
    op.create_index("ix_suppressions_email", "suppressions", ["project_id", "email_hash"])
    op.create_table(
        "contact_merges",
        sa.Column("from_contact_id", sa.BigInteger(), nullable=False, autoincrement=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("into_contact_id", Id, nullable=False),
        sa.Column("email_normalized", SearchKey, nullable=True),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["into_contact_id"], ["contacts.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("from_contact_id"),
    )
    op.create_index("ix_contact_merges_into", "contact_merges", ["into_contact_id"])
    op.create_index("ix_contact_merges_email", "contact_merges", ["project_id", "email_normalized"])
    op.create_table(
        "audit_log",
        sa.Column("id", Id, nullable=False),
        sa.Column("project_id", Id, nullable=False),
        sa.Column("actor_type", sa.String(8), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(64), nullable=False),
        sa.Column("target", sa.String(255), nullable=True),
        sa.Column("changes", Document, nullable=False),
        sa.Column("created_at", When, nullable=False),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_audit_log_project", "audit_log", ["project_id", "id"])


def downgrade() -> None:
    op.drop_table("audit_log")
    op.drop_table("contact_merges")
    op.drop_table("suppressions")
    op.drop_index("ix_contacts_erased", table_name="contacts")
    op.drop_index("ix_events_project_received", table_name="events")
    op.drop_index("ix_webhook_messages_visitor", table_name="webhook_messages")
    op.drop_index("ix_webhook_messages_contact", table_name="webhook_messages")
    with op.batch_alter_table("webhook_messages") as batch:
        batch.drop_column("visitor_id")
        batch.drop_column("contact_id")
    op.drop_index("ix_changes_visitor", table_name="changes")
    op.drop_index("ix_changes_contact", table_name="changes")
    with op.batch_alter_table("changes") as batch:
        batch.drop_column("visitor_id")
        batch.drop_column("contact_id")
    with op.batch_alter_table("contacts") as batch:
        batch.drop_column("erased_at")
    with op.batch_alter_table("projects") as batch:
        batch.drop_column("conversation_retention_days")
        batch.drop_column("event_retention_days")
        batch.drop_column("suppression_key")

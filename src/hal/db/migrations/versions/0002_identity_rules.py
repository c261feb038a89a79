"""identity rules: verified bindings and emails, guarded companies, event ids per caller,
conversations' verified starter, company claims, server-side inbox sessions

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    with op.batch_alter_table("projects") as batch:
        batch.add_column(
            sa.Column("company_claims", sa.String(8), nullable=False, server_default="open")
        )
    with op.batch_alter_table("contacts") as batch:
        batch.add_column(
            sa.Column("email_verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    # Contacts verified by a hash over their email (no user_id) had their email signed.
    op.execute(
        "UPDATE contacts SET email_verified = verified WHERE user_id IS NULL AND email IS NOT NULL"
    )
    with op.batch_alter_table("companies") as batch:
        batch.add_column(
            sa.Column("guarded", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.execute(
        "UPDATE companies SET guarded = true WHERE id IN (SELECT cc.company_id FROM "
        "contact_companies cc JOIN contacts c ON c.id = cc.contact_id WHERE c.verified)"
    )
    with op.batch_alter_table("visitors") as batch:
        batch.add_column(
            sa.Column("verified", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("signed_company_ids", hal.db.types.JSONDocument))
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("verified_contact_id", Id, nullable=True))
        batch.create_foreign_key(
            "fk_conversations_verified_contact",
            "contacts",
            ["verified_contact_id"],
            ["id"],
            ondelete="SET NULL",
        )
    with op.batch_alter_table("events") as batch:
        batch.add_column(sa.Column("event_owner", sa.String(32), nullable=True))
    op.execute(
        "UPDATE events SET event_owner = CASE WHEN contact_id IS NOT NULL "
        "THEN 'c' || contact_id ELSE 'v' || visitor_id END WHERE event_key IS NOT NULL"
    )
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_key", type_="unique")
        batch.create_unique_constraint(
            "uq_events_owner_key", ["project_id", "event_owner", "event_key"]
        )
    op.create_table(
        "agent_sessions",
        sa.Column("id", Id, nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("agent_id", Id, nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["agent_id"], ["agents.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_agent_sessions_agent", "agent_sessions", ["agent_id"])


def downgrade() -> None:
    op.drop_index("ix_agent_sessions_agent", table_name="agent_sessions")
    op.drop_table("agent_sessions")
    with op.batch_alter_table("events") as batch:
        batch.drop_constraint("uq_events_owner_key", type_="unique")
        batch.drop_column("event_owner")
        batch.create_unique_constraint("uq_events_key", ["project_id", "event_key"])
    with op.batch_alter_table("conversations") as batch:
        batch.drop_constraint("fk_conversations_verified_contact", type_="foreignkey")
        batch.drop_column("verified_contact_id")
    with op.batch_alter_table("visitors") as batch:
        batch.drop_column("signed_company_ids")
        batch.drop_column("verified")
    for table, column in [
        ("companies", "guarded"),
        ("contacts", "email_verified"),
        ("projects", "company_claims"),
    ]:
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)

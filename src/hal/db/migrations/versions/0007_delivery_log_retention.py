"""The delivery log is purged by age: an index on webhook_messages.created_at

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_webhook_messages_created", "webhook_messages", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_webhook_messages_created", table_name="webhook_messages")

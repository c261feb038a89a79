"""import jobs: an uploaded CSV import runs as a job that any server process can resume
(its file until it ends, its progress and its failed rows)

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-05 09:34:51.472591
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import hal.db.types

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "import_jobs",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column(
            "project_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False
        ),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("source", sa.String(length=8), nullable=False),
        sa.Column("status", sa.String(length=8), nullable=False),
        sa.Column("dry_run", sa.Boolean(), nullable=False),
        sa.Column("options", hal.db.types.JSONDocument, nullable=False),
        sa.Column("rows_total", sa.Integer(), nullable=True),
        sa.Column("rows_done", sa.Integer(), nullable=False),
        sa.Column("created", sa.Integer(), nullable=False),
        sa.Column("updated", sa.Integer(), nullable=False),
        sa.Column("unchanged", sa.Integer(), nullable=False),
        sa.Column("failed", sa.Integer(), nullable=False),
        sa.Column("error", hal.db.types.JSONDocument, nullable=True),
        sa.Column("lease_owner", sa.String(length=64), nullable=True),
        sa.Column("lease_until", hal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claims", sa.Integer(), nullable=False),
        sa.Column("created_at", hal.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("started_at", hal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", hal.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["project_id"], ["projects.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.create_index("ix_import_jobs_claimable", ["status", "lease_until"], unique=False)
        batch_op.create_index("ix_import_jobs_finished", ["finished_at"], unique=False)
        batch_op.create_index("ix_import_jobs_project", ["project_id", "id"], unique=False)

    op.create_table(
        "import_failures",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("line", sa.Integer(), nullable=False),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("field", sa.String(length=255), nullable=True),
        sa.Column("row", hal.db.types.JSONDocument, nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("import_failures", schema=None) as batch_op:
        batch_op.create_index("ix_import_failures_job", ["job_id", "line"], unique=False)

    op.create_table(
        "import_files",
        sa.Column("job_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(["job_id"], ["import_jobs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("job_id"),
    )


def downgrade() -> None:
    op.drop_table("import_files")
    with op.batch_alter_table("import_failures", schema=None) as batch_op:
        batch_op.drop_index("ix_import_failures_job")

    op.drop_table("import_failures")
    with op.batch_alter_table("import_jobs", schema=None) as batch_op:
        batch_op.drop_index("ix_import_jobs_project")
        batch_op.drop_index("ix_import_jobs_finished")
        batch_op.drop_index("ix_import_jobs_claimable")

    op.drop_table("import_jobs")

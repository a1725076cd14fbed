"""Ingest jobs queued in the database: who asked, which worker holds the lease, live per-file progress.

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

NEW_JOB_COLUMNS = ("sync", "requested_by", "worker", "heartbeat_at", "attempts", "total_files", "done_files")


def upgrade() -> None:
    """Add the queue and lease columns to ingest_jobs, and the per-file progress table."""
    with op.batch_alter_table("ingest_jobs") as batch:
        batch.add_column(sa.Column("sync", sa.Boolean, nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("requested_by", sa.String(100)))
        batch.add_column(sa.Column("worker", sa.String(200)))
        batch.add_column(sa.Column("heartbeat_at", sa.DateTime(timezone=True)))
        batch.add_column(sa.Column("attempts", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("total_files", sa.Integer, nullable=False, server_default="0"))
        batch.add_column(sa.Column("done_files", sa.Integer, nullable=False, server_default="0"))
    # Workers look for queued jobs and expired leases by status on every poll.
    op.create_index("ix_ingest_jobs_status", "ingest_jobs", ["status", "id"])
    op.create_table(
        "ingest_job_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("ingest_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_ingest_job_files_job_id", "ingest_job_files", ["job_id"])


def downgrade() -> None:
    """Drop the progress table and the queue columns."""
    op.drop_table("ingest_job_files")
    op.drop_index("ix_ingest_jobs_status", "ingest_jobs")
    with op.batch_alter_table("ingest_jobs") as batch:
        for column in NEW_JOB_COLUMNS:
            batch.drop_column(column)

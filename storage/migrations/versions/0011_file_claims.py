"""Files of a job shared between workers: ``ingest_file_claims`` (open, claimed under a lease, done).

Used by workers on the PostgreSQL index backend; created on every database so the schema is one.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the claims table."""
    op.create_table(
        "ingest_file_claims",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("ingest_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("is_update", sa.Boolean, nullable=False),
        sa.Column("status", sa.String(10), nullable=False),
        sa.Column("worker", sa.String(200), nullable=True),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(20), nullable=True),
        sa.Column("chunks", sa.Integer, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.UniqueConstraint("job_id", "path", name="uq_ingest_file_claims_job_path"),
    )
    op.create_index("ix_ingest_file_claims_status", "ingest_file_claims", ["status", "job_id"])


def downgrade() -> None:
    """Drop the claims table."""
    op.drop_index("ix_ingest_file_claims_status", "ingest_file_claims")
    op.drop_table("ingest_file_claims")

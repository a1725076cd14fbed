"""Sources: folders kept in step with a collection, and their runs among the ingest jobs.

Revision ID: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

RUN_STATES = ("queued", "running")


def upgrade() -> None:
    """Create ``sources``; give ingest jobs their source and trigger, one queued and one running run per source."""
    op.create_table(
        "sources",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False, unique=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("folder", sa.Text, nullable=False),
        sa.Column("schedule", sa.String(100), nullable=False),
        sa.Column("include", sa.JSON, nullable=False),
        sa.Column("exclude", sa.JSON, nullable=False),
        sa.Column("max_file_mb", sa.Float),
        sa.Column("max_removal_share", sa.Float, nullable=False),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("created_by", sa.String(100), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    # Plain ADD COLUMN, never SQLite's batch copy of the table: dropping the old ingest_jobs would
    # cascade to every job's recorded files.
    if op.get_bind().dialect.name == "sqlite":  # SQLite takes a reference only inline in ADD COLUMN
        op.execute("ALTER TABLE ingest_jobs ADD COLUMN source_id INTEGER REFERENCES sources (id) ON DELETE SET NULL")
    else:
        op.add_column("ingest_jobs", sa.Column("source_id", sa.Integer, sa.ForeignKey(
            "sources.id", ondelete="SET NULL", name="fk_ingest_jobs_source_id")))
    op.add_column("ingest_jobs", sa.Column("trigger", sa.String(20)))
    for state in RUN_STATES:
        where = sa.text(f"status = '{state}'")
        op.create_index(f"uq_ingest_jobs_source_{state}", "ingest_jobs", ["source_id"], unique=True,
                        sqlite_where=where, postgresql_where=where)


def downgrade() -> None:
    """Drop the sources and the jobs' columns for them."""
    for state in RUN_STATES:
        op.drop_index(f"uq_ingest_jobs_source_{state}", "ingest_jobs")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("fk_ingest_jobs_source_id", "ingest_jobs", type_="foreignkey")
    op.drop_column("ingest_jobs", "trigger")
    op.drop_column("ingest_jobs", "source_id")
    op.drop_table("sources")

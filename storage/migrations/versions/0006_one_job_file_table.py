"""One table of per-file job outcomes: the failures of ``ingest_failures`` move into ``ingest_job_files``.

A queued job wrote each failed file twice (a progress row as it ran, a failure row when it ended);
a command-line run wrote only the failure row. Failure rows become ``failed`` file rows, except
for jobs whose progress already lists their failed files, and ``ingest_failures`` is dropped.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

MOVE_FAILURES = """
INSERT INTO ingest_job_files (job_id, path, outcome, chunks, reason)
SELECT f.job_id, f.path, 'failed', 0, f.reason FROM ingest_failures f
WHERE NOT EXISTS (SELECT 1 FROM ingest_job_files p WHERE p.job_id = f.job_id AND p.outcome = 'failed')
ORDER BY f.id
"""

COPY_BACK = """
INSERT INTO ingest_failures (job_id, path, reason)
SELECT job_id, path, reason FROM ingest_job_files WHERE outcome = 'failed' ORDER BY id
"""


def upgrade() -> None:
    """Move every recorded failure into ingest_job_files, then drop ingest_failures."""
    op.execute(MOVE_FAILURES)
    op.drop_index("ix_ingest_failures_job_id", "ingest_failures")
    op.drop_table("ingest_failures")


def downgrade() -> None:
    """Recreate ingest_failures from the failed file rows (which stay, as 0005 had them for queued jobs)."""
    op.create_table(
        "ingest_failures",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("job_id", sa.Integer, sa.ForeignKey("ingest_jobs.id", ondelete="CASCADE"), nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    op.create_index("ix_ingest_failures_job_id", "ingest_failures", ["job_id"])
    op.execute(COPY_BACK)

"""The quality loop: ``expected_answers``, the answers admins expect to questions people asked.

Revision ID: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the table."""
    op.create_table(
        "expected_answers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("collection_id", sa.Integer, sa.ForeignKey("collections.id", ondelete="CASCADE"), nullable=False),
        sa.Column("message_id", sa.Integer, sa.ForeignKey("chat_messages.id", ondelete="SET NULL"), unique=True),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text),
        sa.Column("answerable", sa.Boolean, nullable=False),
        sa.Column("origin", sa.String(20), nullable=False),
        sa.Column("document_id", sa.Integer, sa.ForeignKey("documents.id", ondelete="SET NULL")),
        sa.Column("file", sa.Text),
        sa.Column("page", sa.Integer),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("users.id", ondelete="SET NULL")),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_expected_answers_collection_id", "expected_answers", ["collection_id"])


def downgrade() -> None:
    """Drop the table."""
    op.drop_index("ix_expected_answers_collection_id", "expected_answers")
    op.drop_table("expected_answers")

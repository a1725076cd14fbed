"""Keyword search before embeddings: a chunk is stored (and BM25-indexed) before its embedding exists.

``chunks.embedding`` may be NULL until the ingest's embedding pass fills it; a partial index
finds a collection's chunks still waiting, so a run resumed after a crash embeds them.

Revision ID: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Let the embedding wait; index the chunks that wait."""
    with op.batch_alter_table("chunks") as batch:
        batch.alter_column("embedding", existing_type=sa.LargeBinary(), nullable=True)
    op.create_index("ix_chunks_unembedded", "chunks", ["collection_id", "id", "document_id"],
                    sqlite_where=sa.text("embedding IS NULL"), postgresql_where=sa.text("embedding IS NULL"))


def downgrade() -> None:
    """Drop chunks that were never embedded (their files are ingested again), then require the embedding."""
    op.drop_index("ix_chunks_unembedded", table_name="chunks")
    op.execute("DELETE FROM documents WHERE id IN (SELECT document_id FROM chunks WHERE embedding IS NULL)")
    with op.batch_alter_table("chunks") as batch:
        batch.alter_column("embedding", existing_type=sa.LargeBinary(), nullable=False)

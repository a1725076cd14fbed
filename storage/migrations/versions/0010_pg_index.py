"""The index in PostgreSQL: ``index_chunks`` (pgvector embeddings, BM25 terms) and ``index_stats``.

Created only on PostgreSQL servers that offer the vector extension; elsewhere (SQLite, a
server without pgvector) this migration does nothing, and choosing the PostgreSQL index
backend says what is missing. ``storage.pg_index`` holds the statements.

Revision ID: 0010
"""

from __future__ import annotations

import logging

from alembic import op
from sqlalchemy.exc import DBAPIError

from storage import pg_index

log = logging.getLogger(__name__)

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the tables when the server can hold them."""
    connection = op.get_bind()
    if connection.dialect.name != "postgresql" or not pg_index.vector_available(connection):
        return
    try:
        with connection.begin_nested():  # a role that may not create the extension keeps the rest of the schema
            pg_index.create_schema(connection)
    except DBAPIError as exc:
        log.warning("the PostgreSQL index tables were not created (the index backend says why when chosen): %s", exc)


def downgrade() -> None:
    """Drop the tables."""
    connection = op.get_bind()
    if connection.dialect.name == "postgresql":
        pg_index.drop_schema(connection)

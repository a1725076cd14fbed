"""API tokens may expire: the moment after which a token is refused.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add api_tokens.expires_at; tokens made before it never expire, as when they were made."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True)))


def downgrade() -> None:
    """Drop the expiry."""
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("expires_at")

"""Accounts from the company directory: where a user comes from, and memberships the directory decides.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Users get a source (local or directory) and directory fields; memberships a source (manual or directory).

    Plain ADD COLUMN, not a batch: on SQLite a batch copies ``users`` to a new table and drops the old
    one, and with foreign keys on that drop cascades to every group membership and session.
    """
    op.add_column("users", sa.Column("source", sa.String(20), nullable=False, server_default="local"))
    op.add_column("users", sa.Column("directory_dn", sa.Text(), nullable=True))
    op.add_column("users", sa.Column("display_name", sa.String(200), nullable=False, server_default=""))
    op.add_column("users", sa.Column("email", sa.String(200), nullable=False, server_default=""))
    op.add_column("users", sa.Column("directory_disabled", sa.Boolean(), nullable=False,
                                     server_default=sa.false()))
    op.add_column("group_members", sa.Column("source", sa.String(20), nullable=False, server_default="manual"))
    op.add_column("group_members", sa.Column("directory_group", sa.String(200), nullable=False,
                                             server_default=""))


def downgrade() -> None:
    """Drop the directory fields (ALTER TABLE DROP COLUMN: SQLite 3.35 or later)."""
    for column in ("directory_group", "source"):
        op.drop_column("group_members", column)
    for column in ("directory_disabled", "email", "display_name", "directory_dn", "source"):
        op.drop_column("users", column)

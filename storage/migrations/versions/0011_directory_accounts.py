"""Accounts from the company directory: where a user comes from, and memberships the directory decides.

Revision ID: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Users get a source (local or directory) and directory fields; memberships a source (manual or directory)."""
    with op.batch_alter_table("users") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="local"))
        batch.add_column(sa.Column("directory_dn", sa.Text(), nullable=True))
        batch.add_column(sa.Column("display_name", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("email", sa.String(200), nullable=False, server_default=""))
        batch.add_column(sa.Column("directory_disabled", sa.Boolean(), nullable=False, server_default=sa.false()))
    with op.batch_alter_table("group_members") as batch:
        batch.add_column(sa.Column("source", sa.String(20), nullable=False, server_default="manual"))
        batch.add_column(sa.Column("directory_group", sa.String(200), nullable=False, server_default=""))


def downgrade() -> None:
    """Drop the directory fields."""
    with op.batch_alter_table("group_members") as batch:
        batch.drop_column("directory_group")
        batch.drop_column("source")
    with op.batch_alter_table("users") as batch:
        for column in ("directory_disabled", "email", "display_name", "directory_dn", "source"):
            batch.drop_column(column)

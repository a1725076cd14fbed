"""Web app tables: users, groups, grants, sessions, audit log, chats, messages, feedback.

Revision ID: 0002
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Stamp = sa.DateTime(timezone=True)


def _id() -> sa.Column:
    return sa.Column("id", sa.Integer, primary_key=True)


def _fk(name: str, target: str, **kw: Any) -> sa.Column:
    return sa.Column(name, sa.Integer, sa.ForeignKey(target, ondelete="CASCADE"), nullable=False, **kw)


def upgrade() -> None:
    """Create the tables."""
    op.create_table(
        "users", _id(),
        sa.Column("username", sa.String(100), nullable=False, unique=True),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("role", sa.String(20), nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.Column("failed_sign_ins", sa.Integer, nullable=False),
        sa.Column("locked_until", Stamp),
        sa.Column("created_at", Stamp, nullable=False),
    )
    op.create_table("groups", _id(), sa.Column("name", sa.String(100), nullable=False, unique=True))
    op.create_table(
        "group_members",
        _fk("group_id", "groups.id", primary_key=True), _fk("user_id", "users.id", primary_key=True),
    )
    op.create_table(
        "collection_grants",
        _fk("collection_id", "collections.id", primary_key=True), _fk("group_id", "groups.id", primary_key=True),
    )
    op.create_table(
        "web_sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        _fk("user_id", "users.id", index=True),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("expires_at", Stamp, nullable=False),
        sa.Column("client", sa.String(200), nullable=False),
    )
    op.create_table(
        "audit_events", _id(),
        sa.Column("at", Stamp, nullable=False),
        sa.Column("username", sa.String(100), nullable=False),
        sa.Column("action", sa.String(50), nullable=False),
        sa.Column("target", sa.Text, nullable=False),
        sa.Column("detail", sa.JSON, nullable=False),
    )
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    _chat_tables()


def _chat_tables() -> None:
    op.create_table(
        "chats", _id(), _fk("user_id", "users.id", index=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("collections", sa.JSON, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.Column("updated_at", Stamp, nullable=False),
    )
    op.create_table(
        "chat_messages", _id(), _fk("chat_id", "chats.id", index=True),
        sa.Column("ordinal", sa.Integer, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
        sa.UniqueConstraint("chat_id", "ordinal", name="uq_chat_message_ordinal"),
    )
    op.create_table(
        "feedback", _id(), _fk("message_id", "chat_messages.id", index=True), _fk("user_id", "users.id"),
        sa.Column("helpful", sa.Boolean, nullable=False),
        sa.Column("comment", sa.Text, nullable=False),
        sa.Column("question", sa.Text, nullable=False),
        sa.Column("answer", sa.Text, nullable=False),
        sa.Column("citations", sa.JSON, nullable=False),
        sa.Column("backend", sa.Text, nullable=False),
        sa.Column("created_at", Stamp, nullable=False),
    )


def downgrade() -> None:
    """Drop the tables."""
    for table in ("feedback", "chat_messages", "chats", "audit_events", "web_sessions",
                  "collection_grants", "group_members", "groups", "users"):
        op.drop_table(table)
